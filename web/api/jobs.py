"""Enrichment job routes: thin over core/api/jobs.py. The CSV body is copied to disk a chunk at a
time; the job runs on a huey worker."""

from __future__ import annotations

import hashlib
from pathlib import Path

from apiflask import APIBlueprint
from flask import Response, g, json, request, send_file
from pydantic import ValidationError

from core.api.idempotency import request_hash
from core.api.jobs import MAX_UPLOAD_BYTES, JobSpec, JobSubmission
from core.api.service import ApiService
from core.errors import InvalidInput
from web.api import render
from web.api.problems import pointer_of, problem
from web.api.schemas import JobCreatedOut, JobQuery, JobRowsIn, JobViewOut

MAX_JSON_ROWS_BODY_BYTES = 10 * 1024 * 1024
CREATE_ENDPOINT = "api_v1.create_enrichment_job"
CSV_SCHEMA = {"type": "string"}


def body_limit() -> int:
    """What the create route accepts: a CSV upload streamed to disk may be large; JSON is parsed in memory."""
    if request.mimetype == "text/csv":
        return MAX_UPLOAD_BYTES
    return MAX_JSON_ROWS_BODY_BYTES


def _spec(query: JobQuery) -> JobSpec:
    pairs = []
    for item in (query.map or "").split(","):
        if not item.strip():
            continue
        column, sep, field = item.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise InvalidInput(f"map: {item!r} is not COLUMN=FIELD")
        pairs.append((column.strip(), field.strip()))
    return JobSpec(query.email, query.mobile, query.max_credits, tuple(pairs), query.label, query.webhook_url)


def _upload(api: ApiService) -> tuple[Path, str] | Response:
    """The input saved to a file, and the hash of its bytes (for Idempotency-Key)."""
    if request.mimetype == "text/csv":
        path = api.jobs.save_upload(request.stream)
    elif request.mimetype == "application/json":
        try:
            rows = JobRowsIn.model_validate(request.get_json(force=True))
        except ValidationError as exc:
            errors = [{"pointer": pointer_of(e["loc"]), "detail": e["msg"]} for e in exc.errors()]
            first = errors[0]
            return problem(422, "validation-error", "Request validation failed",
                           f"{first['pointer'] or 'body'}: {first['detail']}", first["pointer"], errors=errors)
        path = api.jobs.rows_to_csv(rows.rows)
    else:
        return problem(415, "unsupported-media-type", "Unsupported Media Type",
                       "send text/csv (a CSV file) or application/json ({\"rows\": [...]})")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
    return path, digest.hexdigest()


def _created(submission: JobSubmission) -> dict:
    return {"data": render.job(submission.job), "meta": {"cost_preview": render.estimate(submission.estimate)}}


def add_job_routes(bp: APIBlueprint, api: ApiService) -> None:
    @bp.post("/enrichment/jobs")
    @bp.input(JobQuery, location="query", arg_name="query")
    @bp.output(JobCreatedOut, status_code=202)
    def create_enrichment_job(query: JobQuery):
        """Start an enrichment job: a CSV body (text/csv) or JSON rows; 202 with the job and its exact
        cost preview. Charging: Idempotency-Key accepted."""
        spec = _spec(query)
        saved = _upload(api)
        if isinstance(saved, Response):
            return saved
        path, content_hash = saved
        key = request.headers.get("Idempotency-Key")
        claim = None
        if key is not None:
            digest = request_hash("POST", request.path, {"q": query.model_dump(mode="json"), "body": content_hash})
            claim = api.idempotency.claim(g.api_caller.key_id, key, digest)
            if claim.replay is not None:
                path.unlink(missing_ok=True)
                response = Response(json.dumps(claim.replay.body), status=claim.replay.status,
                                    mimetype="application/json")
                response.headers["Idempotent-Replayed"] = "true"
                return response
        try:
            body = _created(api.jobs.submit(g.api_caller, path, spec))
        except BaseException:
            if claim is not None:
                api.idempotency.complete(claim.record_id, 500, {})
            raise
        if claim is not None:
            api.idempotency.complete(claim.record_id, 202, body)
        return Response(json.dumps(body), status=202, mimetype="application/json")

    @bp.get("/enrichment/jobs/<int:job_id>")
    @bp.output(JobViewOut)
    def enrichment_job(job_id: int):
        """A job's status, progress and credits."""
        return {"data": render.job(api.jobs.job(g.api_caller, job_id)), "meta": {}}

    @bp.post("/enrichment/jobs/<int:job_id>/cancel")
    @bp.output(JobViewOut)
    def cancel_enrichment_job(job_id: int):
        """Cancel a job: its spend-cap hold is released at once; rows not reached are marked."""
        return {"data": render.job(api.jobs.cancel(g.api_caller, job_id)), "meta": {}}

    @bp.get("/enrichment/jobs/<int:job_id>/result")
    @bp.doc(responses={200: {"description": "The enriched CSV", "content": {"text/csv": {"schema": CSV_SCHEMA}}}})
    def enrichment_job_result(job_id: int):
        """The enriched CSV (input columns, then the enrichment columns), streamed from disk."""
        path = api.jobs.result(g.api_caller, job_id)
        return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"job-{job_id}.csv")
