"""Enrichment jobs through the API: the input (an uploaded CSV, or JSON rows written as a CSV) is
streamed to a file, planned and priced exactly like `tributary enrich` (core.enrichment), then run
on a huey worker (`run_api_job`, registered in core/jobs/tasks.py), never in the web request.

Files live in `job_dir`: `job-<id>.in.csv` (the input) and `job-<id>.out.csv` (the enriched CSV,
published by rename when the job is done). A job of another team is "not found", exactly as a job
that does not exist.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from core.api.keys import ApiCaller
from core.api.webhooks import WebhookPolicy, check_webhook_url, deliver
from core.enrichment.csv_enrich import CsvEnrichment, CsvEnrichRequest
from core.enrichment.estimate import CostEstimate
from core.enrichment.jobs import JobInfo, JobOptions
from core.errors import InvalidInput, NotFound, TributaryError
from storage.models.enrichment import JobStatus
from storage.models.enums import Feature

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_JSON_ROWS = 10_000
UPLOAD_CHUNK_BYTES = 64 * 1024
MAX_JOB_ID = 2**31 - 1  # enrichment_job.id is a 32-bit INTEGER: a larger id names no job


class UploadTooLarge(TributaryError):
    pass


class JobNotFinished(TributaryError):
    pass


@dataclass(frozen=True)
class JobSpec:
    """Options as in the CLI: what to find, the spend cap, column overrides (column -> field)."""

    want_email: bool = True
    want_mobile: bool = False
    max_credits: int | None = None
    column_map: tuple[tuple[str, str], ...] = ()
    label: str = "api"
    webhook_url: str | None = None  # gets a signed completion event
    api_key_id: int | None = None  # the key that created the job: signs its webhook


@dataclass(frozen=True)
class JobSubmission:
    job: JobInfo
    estimate: CostEstimate


# Enqueues the run of a job on the workers: (job id, its spec as plain values).
Enqueue = Callable[[int, dict], None]


class ApiJobs:
    def __init__(
        self,
        csv_enrichment: CsvEnrichment,
        job_dir: Path,
        enqueue: Enqueue | None = None,
        *,
        signing_key: Callable[[int], str] | None = None,
        webhook_policy: WebhookPolicy | None = None,
    ) -> None:
        self.csv = csv_enrichment
        self.jobs = csv_enrichment.jobs
        self.job_dir = job_dir
        self.enqueue = enqueue
        self.signing_key = signing_key
        self.webhook_policy = webhook_policy or WebhookPolicy()

    def save_upload(self, stream: BinaryIO, limit_bytes: int = MAX_UPLOAD_BYTES) -> Path:
        """Copy a request body to a file a chunk at a time (never whole in memory)."""
        self.job_dir.mkdir(parents=True, exist_ok=True)
        path = self.job_dir / f"upload-{uuid.uuid4().hex}.csv"
        size = 0
        try:
            with path.open("wb") as out:
                while chunk := stream.read(UPLOAD_CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit_bytes:
                        raise UploadTooLarge(f"body: larger than {limit_bytes} bytes")
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise InvalidInput("body: empty; send a CSV file or JSON rows")
        return path

    def rows_to_csv(self, rows: Iterable[dict[str, str | None]]) -> Path:
        rows = list(rows)
        if not rows or len(rows) > MAX_JSON_ROWS:
            raise InvalidInput(f"rows: give 1 to {MAX_JSON_ROWS} rows")
        header = list(dict.fromkeys(key for row in rows for key in row))
        self.job_dir.mkdir(parents=True, exist_ok=True)
        path = self.job_dir / f"upload-{uuid.uuid4().hex}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for row in rows:
                writer.writerow(["" if row.get(h) is None else str(row.get(h)) for h in header])
        return path

    def submit(self, caller: ApiCaller, upload: Path, spec: JobSpec) -> JobSubmission:
        """Plan and price the input, create the job (and its spend-cap hold), enqueue its run."""
        if not (spec.want_email or spec.want_mobile):
            raise InvalidInput("find: ask for email, mobile or both")
        check_webhook_url(spec.webhook_url)
        spec = replace(spec, api_key_id=caller.key_id)
        try:
            request = self._request(caller, upload, spec, upload.with_suffix(".out.csv"))
            plan = self.csv.plan(request)
            estimate = self.csv.estimate(request, plan)
            options = JobOptions(spec.want_email, spec.want_mobile, spec.max_credits, Feature.API)
            job = self.jobs.start(
                caller.team.id, caller.member.id, options,
                label=spec.label, fingerprint=plan.fingerprint, total_rows=plan.format.data_rows,
            )
        except BaseException:
            upload.unlink(missing_ok=True)
            raise
        os.replace(upload, self._input(job.id))
        if self.enqueue is None:
            raise TributaryError("no job queue configured")
        self.enqueue(job.id, spec_values(spec))
        return JobSubmission(job, estimate)

    def job(self, caller: ApiCaller, job_id: int) -> JobInfo:
        job = None
        if 0 < job_id <= MAX_JOB_ID:
            try:
                job = self.jobs.job(job_id)
            except NotFound:
                pass
        if job is None or job.team_id != caller.team.id or job.options.feature != Feature.API:
            raise NotFound(f"no enrichment job {job_id}")
        return job

    def cancel(self, caller: ApiCaller, job_id: int) -> JobInfo:
        self.job(caller, job_id)
        return self.jobs.cancel(job_id)

    def result(self, caller: ApiCaller, job_id: int) -> Path:
        job = self.job(caller, job_id)
        path = self._output(job_id)
        if job.status != JobStatus.DONE or not path.exists():
            raise JobNotFinished(f"job {job_id} is {job.status.value}: its result is not ready")
        return path

    def run(self, job_id: int, spec: JobSpec) -> None:
        """The worker's side: enrich the stored input into the output file (resumes after a crash)."""
        job = self.jobs.job(job_id)
        if job.status != JobStatus.RUNNING:
            return  # cancelled before it ran, or already done by another worker
        team = self.jobs.accounts.team(job.team_id)
        member = self.jobs.accounts.member(job.member_id, team.id)
        caller = ApiCaller(0, "", team, member, 0, 0)  # the run acts as the job's member
        request = self._request(caller, self._input(job_id), spec, self._output(job_id))
        plan = self.csv.plan(request)
        if job.progress.done_rows:  # a run that died part-way: continue after its stored rows
            job = self.jobs.resume(job_id)
        self.csv.run(request, plan, job)
        self.notify(job_id, spec)

    def notify(self, job_id: int, spec: JobSpec) -> bool:
        """Send the signed completion event, if the job asked for one; True when acknowledged."""
        if not spec.webhook_url or spec.api_key_id is None or self.signing_key is None:
            return False
        job = self.jobs.job(job_id)
        event = {"type": "enrichment_job.completed", "data": job_event_data(job)}
        ok = deliver(spec.webhook_url, self.signing_key(spec.api_key_id), event, self.webhook_policy)
        if not ok:
            log.warning("job %s: completion webhook not acknowledged after %s attempts", job_id,
                        self.webhook_policy.max_attempts)
        return ok

    def _request(self, caller: ApiCaller, path: Path, spec: JobSpec, output: Path) -> CsvEnrichRequest:
        return CsvEnrichRequest(
            input_path=path, output_path=output, team=caller.team.name, member=caller.member.email,
            want_email=spec.want_email, want_mobile=spec.want_mobile, max_credits=spec.max_credits,
            column_map=spec.column_map,
        )

    def _input(self, job_id: int) -> Path:
        return self.job_dir / f"job-{job_id}.in.csv"

    def _output(self, job_id: int) -> Path:
        return self.job_dir / f"job-{job_id}.out.csv"


def job_event_data(job: JobInfo) -> dict:
    p = job.progress
    return {
        "id": job.id,
        "status": job.status.value,
        "label": job.label,
        "credits_charged": p.charged_credits,
        "total_rows": p.total_rows,
        "done_rows": p.done_rows,
        "matched_rows": p.matched_rows,
        "found_rows": p.found_rows,
        "error_rows": p.error_rows,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def spec_values(spec: JobSpec) -> dict:
    return {
        "webhook_url": spec.webhook_url,
        "api_key_id": spec.api_key_id,
        "want_email": spec.want_email,
        "want_mobile": spec.want_mobile,
        "max_credits": spec.max_credits,
        "column_map": [list(pair) for pair in spec.column_map],
        "label": spec.label,
    }


def spec_from_values(values: dict) -> JobSpec:
    return JobSpec(
        want_email=bool(values["want_email"]),
        want_mobile=bool(values["want_mobile"]),
        max_credits=values["max_credits"],
        column_map=tuple((str(a), str(b)) for a, b in values["column_map"]),
        label=str(values["label"]),
        webhook_url=values.get("webhook_url"),
        api_key_id=values.get("api_key_id"),
    )
