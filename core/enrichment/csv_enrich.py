"""CSV enrichment: a file in, the same file with enrichment columns appended out, through one job.

Every input row is written, in order, with its original cells (ragged rows padded to the widest row,
values neutralised against formula injection) followed by core.enrichment.rows.OUTPUT_COLUMNS, named
`tributary_<field>` (rows.output_header). Input and output paths are checked in `plan`, before anything
is held or charged. The output is written to `OUT.partial` beside OUT and renamed when complete, so a
crash never leaves a half file under the real name; a failed or interrupted run removes it, and
`--resume` rewrites it whole (stored rows come back from the job's row table).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.enrichment.csv_files import (
    DEFAULT_OUTPUT_ENCODING,
    CsvFormat,
    CsvOutput,
    check_input_path,
    check_output_path,
    inspect_csv,
    output_encoding,
    partial_path,
    read_rows,
)
from core.enrichment.estimate import CostEstimate, estimate_cost
from core.enrichment.headers import HeaderMap, map_header
from core.enrichment.jobs import CANCELLED_ERROR, EnrichmentJobs, JobInfo, JobOptions, JobProgress
from core.enrichment.rows import OUTPUT_COLUMNS, RowInput, RowOutput
from core.errors import InvalidInput
from core.normalize.contact import ContactQuery
from storage.models.enums import ContactSource, Feature

if TYPE_CHECKING:
    from core.contributions import Contributions

CONTRIBUTE_BATCH_ROWS = 500


@dataclass(frozen=True)
class CsvEnrichRequest:
    input_path: Path
    output_path: Path
    team: str
    member: str
    want_email: bool
    want_mobile: bool
    max_credits: int | None = None
    resume: bool = False
    column_map: tuple[tuple[str, str], ...] = ()  # (column, field) overrides
    # The output's encoding: a codec name, or "input" for the input's own (csv_files.output_encoding).
    output_encoding: str = DEFAULT_OUTPUT_ENCODING


@dataclass(frozen=True)
class CsvPlan:
    """What was understood of the file before anything runs."""

    format: CsvFormat
    header_map: HeaderMap
    fingerprint: str
    output_encoding: str = DEFAULT_OUTPUT_ENCODING  # a Python codec name
    team_contributes: bool = True  # unmatched rows are offered to the shared contributor database


@dataclass(frozen=True)
class CsvSummary:
    job_id: int
    resumed: bool
    cancelled: bool
    rows: int
    matched: int
    email_statuses: tuple[tuple[str, int], ...]  # (status, rows), most common first
    mobiles_found: int
    office_phones_found: int
    credits_charged: int
    errors: int
    output_path: Path
    status: str = "done"  # the job's: done, incomplete (rows left for --resume) or cancelled
    not_enriched: int = 0  # rows left undone by the spend cap or an empty wallet


class CsvEnrichment:
    def __init__(
        self,
        jobs: EnrichmentJobs,
        contributions: Contributions | None = None,
        save_contacts: SaveContacts | None = None,
    ) -> None:
        self.jobs = jobs
        # Rows that match no shared person are contributed (core/contributions.py applies the
        # corroboration rules and the team's opt-out: an opted-out team's rows stay private to it).
        self.contributions = contributions
        # Rows matched to a shared person become the uploading member's team contacts (source csv);
        # a callback, so enrichment does not import the contacts wing (which writes CSV through it).
        self.save_contacts = save_contacts

    def share(
        self, team_id: int, member_id: int, unmatched: Iterable[ContactQuery], people: Iterable[int],
        source: ContactSource = ContactSource.CSV,
    ) -> None:
        """Where an upload's rows go besides the output, in-process or on workers: rows that match no
        shared person are contributed (as an upload), matched people become the member's contacts
        (source: the front end the rows came from, a CSV file or a sheet)."""
        unmatched, people = list(unmatched), sorted(people)
        if self.contributions is not None and unmatched:
            self.contributions.contribute(team_id, unmatched, _CSV_SOURCE_KIND)
        if self.save_contacts is not None:
            for start in range(0, len(people), CONTRIBUTE_BATCH_ROWS):  # under the contacts' selection limit
                self.save_contacts(team_id, member_id, people[start : start + CONTRIBUTE_BATCH_ROWS], source)

    def plan(self, request: CsvEnrichRequest) -> CsvPlan:
        """Read the file's shape and check everything that can be checked before a job exists: the
        team, both paths, the encoding, the header."""
        team = self.jobs.accounts.team(request.team)
        check_input_path(request.input_path)
        check_output_path(request.output_path, request.input_path)
        fmt = inspect_csv(request.input_path)
        encoding = output_encoding(request.output_encoding, fmt.encoding)
        header_map = map_header(fmt.header, dict(request.column_map))
        if not header_map.columns:
            raise InvalidInput(
                f"{request.input_path.name}: no column recognised as a name, email, LinkedIn URL, company or "
                f"website (header: {', '.join(repr(h) for h in fmt.header[:20])}); use --map COLUMN=FIELD"
            )
        fingerprint = hashlib.sha256(
            "|".join([fmt.fingerprint, repr(sorted(request.column_map))]).encode()
        ).hexdigest()
        return CsvPlan(fmt, header_map, fingerprint, encoding, team.contribute)

    def estimate(self, request: CsvEnrichRequest, plan: CsvPlan, on_row: Callable[[int], None] | None = None):
        return _estimate(self.jobs, request, plan, on_row)

    def start_or_resume(
        self, request: CsvEnrichRequest, plan: CsvPlan, *, needed_credits: int | None = None
    ) -> tuple[JobInfo, bool]:
        """`needed_credits` (the preview's maximum) sizes a capped job's hold. On `--resume`,
        `--max-credits` (when given) is the whole job's new cap; without it the job keeps its cap."""
        options = self.options(request)
        if request.resume:
            job = self.jobs.resumable(request.team, plan.fingerprint, options)
            if job is None:
                raise InvalidInput(
                    f"--resume: no unfinished job of team {request.team} for this file and these options"
                )
            return self.jobs.resume(job.id, max_credits=request.max_credits, needed_credits=needed_credits), True
        job = self.jobs.start(
            request.team,
            request.member,
            options,
            label=request.input_path.name,
            fingerprint=plan.fingerprint,
            total_rows=plan.format.data_rows,
            needed_credits=needed_credits,
        )
        return job, False

    @staticmethod
    def options(request: CsvEnrichRequest) -> JobOptions:
        return JobOptions(request.want_email, request.want_mobile, request.max_credits, Feature.CSV)

    def run(
        self,
        request: CsvEnrichRequest,
        plan: CsvPlan,
        job: JobInfo,
        *,
        resumed: bool = False,
        on_progress: Callable[[JobProgress], None] | None = None,
    ) -> CsvSummary:
        fmt = plan.format
        in_flight: deque[tuple[list[str], RowInput]] = deque()
        to_contribute: list[ContactQuery] = []

        def inputs() -> Iterator[RowInput]:
            for row in read_rows(fmt):
                item = row_input(plan.header_map, row.index, row.cells)
                in_flight.append((row.cells, item))
                yield item

        matched: set[int] = set()

        def contribute() -> None:
            self.share(job.team_id, job.member_id, to_contribute, matched)
            to_contribute.clear()
            matched.clear()

        partial = partial_path(request.output_path)
        tally = _Tally()
        outputs = self.jobs.run(job.id, inputs(), on_progress=on_progress)
        try:
            with CsvOutput(partial, fmt, OUTPUT_COLUMNS, plan.output_encoding) as out:
                for result in outputs:
                    cells, item = in_flight.popleft()
                    out.write(cells, result.values())
                    if result.person_id is not None:
                        matched.add(result.person_id)
                    elif not result.error and item.problem is None:
                        to_contribute.append(item.query)
                    if len(to_contribute) >= CONTRIBUTE_BATCH_ROWS or len(matched) >= CONTRIBUTE_BATCH_ROWS:
                        contribute()
                    tally.add(result)
            contribute()
            if tally.rows != fmt.data_rows:  # the file changed under us: never publish a short output
                raise InvalidInput(
                    f"{request.input_path.name}: read {tally.rows} rows, expected {fmt.data_rows}; did it change?"
                )
        except BaseException as exc:
            outputs.close()  # lookups in flight finish first: nothing is posted after the hold goes
            partial.unlink(missing_ok=True)
            if not _interrupted(exc):
                raise
            self.jobs.interrupt(job.id)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from exc
        os.replace(partial, request.output_path)
        return tally.summary(job.id, resumed, request.output_path, self.jobs.job(job.id).status.value)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, also when it landed inside a database call and the driver re-raised it as its own
    error (e.g. psycopg during the pool's ping): the cause chain still holds the KeyboardInterrupt."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _Tally:
    """The summary's counts, row by row."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.rows = self.matched = self.mobiles = self.offices = self.credits = self.errors = self.undone = 0
        self.cancelled = False

    def add(self, result: RowOutput) -> None:
        self.rows += 1
        self.matched += result.matched  # a filled match_confidence, as the file shows
        self.statuses[result.email_status] += bool(result.email_status)
        self.mobiles += bool(result.mobile_phone)
        self.offices += bool(result.office_phone)
        self.credits += result.credits_charged
        self.errors += bool(result.error) and not result.undone
        self.undone += result.undone
        self.cancelled = self.cancelled or result.error == CANCELLED_ERROR

    def summary(self, job_id: int, resumed: bool, output_path: Path, status: str) -> CsvSummary:
        return CsvSummary(
            job_id=job_id,
            resumed=resumed,
            cancelled=self.cancelled,
            rows=self.rows,
            matched=self.matched,
            email_statuses=tuple((s, n) for s, n in self.statuses.most_common() if n),
            mobiles_found=self.mobiles,
            office_phones_found=self.offices,
            credits_charged=self.credits,
            errors=self.errors,
            output_path=output_path,
            status=status,
            not_enriched=self.undone,
        )


# (team id, member id, person ids): save matched people as the member's team contacts.
SaveContacts = Callable[[int, int, list[int], ContactSource], object]
_CSV_SOURCE_KIND = "csv"  # storage.models.contributor.SourceKind.CSV


def row_input(header_map: HeaderMap, index: int, cells: list[str]) -> RowInput:
    row_number = index + 1
    if not any(cell.strip() for cell in cells):
        return RowInput(index, ContactQuery(), f"row {row_number}: empty row")
    query, problem = header_map.read(cells, row_number)
    return RowInput(index, query, problem)


def _estimate(
    jobs: EnrichmentJobs, request: CsvEnrichRequest, plan: CsvPlan, on_row: Callable[[int], None] | None
) -> CostEstimate:
    rows = (row_input(plan.header_map, r.index, r.cells) for r in read_rows(plan.format))
    return estimate_cost(
        jobs.engine,
        jobs.accounts,
        request.team,
        rows,
        want_email=request.want_email,
        want_mobile=request.want_mobile,
        max_credits=request.max_credits,
        on_row=on_row,
    )
