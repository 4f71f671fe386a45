"""Writing a Sheets job's results back, in a worker task (never in a web request).

A pass reads the identifier and output columns in one batchGet, finds each row again by the
fingerprint of its identifier cells (core/sheets/placement.py: a sort, an insert or a deletion moves
it; an edited or ambiguous row is not written), and writes, with valueInputOption RAW in one
batchUpdate, only output cells that are empty (never a cell the user typed into), only in the job's
output columns. Rows are written a few thousand at a time (WRITE_MIN_ROWS) so that a 10,000-row sheet
takes a handful of reads and writes. A value already equal to ours is ours (a pass that died after
writing and before recording): recorded, not written again.

Money: each person's credits (what the job's stored rows charged) are reported once, on the first of
their rows written; so the credits in the status column add up to what the job charged.

Without a token (expired with the sidebar closed) the results wait in the database and the job says
"N rows ready to write — open the sidebar"; the next poll brings a fresh token and a pass. A deleted
sheet or a lost permission ends the job (enrichment cancelled, token dropped): what was charged stays
charged, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine, select

from core.enrichment.chunks import ChunkEngine
from core.enrichment.jobs import EnrichmentJobs
from core.errors import TributaryError, check
from core.secrets import SecretBox
from core.sheets.a1 import column_index, quoted
from core.sheets.placement import place_rows, row_fingerprint
from core.sheets.statuses import (
    CHANGED,
    NO_IDENTIFIER,
    NOT_ENRICHED,
    NOT_ENRICHED_CANCELLED,
    ROW_CHANGED,
    SKIPPED,
    credits_in,
    row_status,
    with_credits,
)
from core.sheets.store import (
    CANCELLED,
    DONE,
    FAILED,
    INCOMPLETE,
    WAITING,
    WRITING,
    ReadyRow,
    Settled,
    SheetsJobInfo,
    SheetsStore,
    token_sha256,
)
from core.sheets.types import OpenSheet, SheetGateway, SheetUnavailable
from storage.db import read_transaction
from storage.models import DataRequest
from storage.models.enrichment import JobStatus
from storage.models.enums import DataRequestStatus

log = logging.getLogger(__name__)
_DR = DataRequest.__table__

WRITE_MIN_ROWS = 2000  # rows ready before a pass runs while the job still enriches (few API calls)
WRITE_LEASE_S = 300.0  # a pass owns the job this long (a dead pass's job is taken over after)
OURS_PREFIXES = ("not enriched:",)  # status texts of ours a retry may replace
SHEET_GONE = (
    "The sheet was deleted or is no longer shared with you: nothing more will be written (nothing is charged twice)."
)


REFUSED_TOKEN_MESSAGE = (
    "{rows} rows ready to write, but Google refused this sidebar's access to the sheet (expired or revoked):"
    " reload the spreadsheet and open the sidebar again"
)


def waiting_message(rows: int) -> str:
    return f"{rows} rows ready to write — open the sidebar"


@dataclass(frozen=True)
class PassResult:
    what: str  # written | waiting | busy | nothing | finished | failed | lost_token | unavailable
    rows: int = 0
    writes: int = 0


class SheetsWriter:
    def __init__(self, engine: Engine, store: SheetsStore, jobs: EnrichmentJobs,
                 chunks: Callable[[], ChunkEngine], secret_box: Callable[[], SecretBox]) -> None:
        self.engine = engine
        self.store = store
        self.jobs = jobs
        self.chunks = chunks
        self.secret_box = secret_box
        self.min_rows = WRITE_MIN_ROWS

    def enrichment_over(self, job_id: int) -> bool:
        job = self.jobs.job(job_id)
        return job.status != JobStatus.RUNNING and self.chunks().state(job_id).settled

    def run(self, job_id: int, open_sheet: OpenSheet) -> PassResult:
        """One write pass (idempotent; safe to run any time, by any worker)."""
        job = self.store.job(job_id)
        if job is None or job.final:
            return PassResult("nothing")
        over = self.enrichment_over(job_id)
        if not over and self.store.count_ready(job_id) < self.min_rows:
            return PassResult("nothing")  # counted, not read: most calls (each stored chunk's) stop here
        if not self.store.claim_writing(job_id, WRITE_LEASE_S):
            return PassResult("busy")
        try:
            # Read under the lease: a pass that held it until now may have written some of them.
            ready = self.store.ready(job_id, include_unenriched=over)
            self._settle_without_sheet(job_id, [r for r in ready if r.blank or r.output is None])
            todo = [r for r in ready if not r.blank and r.output is not None]
            token = self._token(job_id) if todo else None  # under the lease: not one a pass before saw refused
            if todo and token is None:
                self.store.set_state(job_id, WAITING, waiting_message(len(todo)))
                return PassResult("waiting", len(todo))
            if todo:
                writes = self._write(job, open_sheet, token, todo)
                if isinstance(writes, PassResult):
                    return writes
        finally:
            self.store.release_writing(job_id)
        if over:
            finished = self._finish(self.store.job(job_id) or job)
            return PassResult("written", len(todo), writes) if todo else finished
        if not todo:
            return PassResult("nothing")
        if self.enrichment_over(job_id):
            # The last chunks were stored during this pass, and their wake-up found it busy: the rest now.
            return self.run(job_id, open_sheet)
        return PassResult("written", len(todo), writes)

    def _write(self, job: SheetsJobInfo, open_sheet: OpenSheet, token: str, todo: list[ReadyRow]) -> int | PassResult:
        """Write `todo` into the sheet (the caller holds the lease): Sheets API calls made, or why not."""
        sheet = open_sheet(token, job.spreadsheet_id, f"member-{job.member_id}")
        try:
            self.store.set_state(job.job_id, WRITING, f"{len(todo)} rows ready to write — keep the sidebar open")
            return self._pass(job, sheet, todo)
        except SheetUnavailable as exc:
            return self._unavailable(job, sheet, exc, len(todo), token)
        finally:
            sheet.close()

    def _token(self, job_id: int) -> str | None:
        sealed = self.store.token(job_id)
        if sealed is None:
            return None
        try:
            return self.secret_box().decrypt(sealed)
        except TributaryError:
            self.store.drop_token(job_id)  # keys rotated away: wait for a fresh one
            return None

    def _settle_without_sheet(self, job_id: int, rows: list[ReadyRow]) -> None:
        """Rows with no identifier, and rows the job never reached (cancelled): nothing to write."""
        self.store.settle(job_id, [
            Settled(r.row_index, SKIPPED, NO_IDENTIFIER, 0, None) if r.blank
            else Settled(r.row_index, NOT_ENRICHED, NOT_ENRICHED_CANCELLED, 0, None)
            for r in rows
        ])

    def _pass(self, job: SheetsJobInfo, sheet: SheetGateway, todo: list[ReadyRow]) -> int:
        ids = sorted(job.mapping.values(), key=column_index)
        outs = dict(job.outputs)
        if job.rows_written == 0:  # new output columns may lie past the grid: grow it first (once)
            title = sheet.ensure_columns(job.sheet_id, max(column_index(c) for c in outs.values()) + 1)
            if title != job.sheet_name:
                self.store.rename(job.job_id, title)
                job = replace(job, sheet_name=title)
        letters = ids + [outs[k] for k in sorted(outs)]
        answers = sheet.read([quoted(job.sheet_name, f"{col}1:{col}") for col in letters])
        grid = _Columns(letters, answers)
        current = {}
        for r in range(1, grid.height + 1):
            cells = [grid.cell(col, r) for col in ids]
            if r != job.header_row and any(c.strip() for c in cells):
                current[r] = row_fingerprint(cells)
        placements = place_rows(self.store.expected(job.job_id), current)
        settled, writes = self._decide(job, grid, placements, todo)
        updates = _updates(job, writes)
        for rng, _ in updates:
            check(_column_of(rng) in outs.values(), f"write outside the output columns: {rng}")
        made = sheet.write(updates) if updates else 0
        self.store.settle(job.job_id, settled)
        return made

    def _decide(self, job: SheetsJobInfo, grid: _Columns, placements: dict, todo: list[ReadyRow]):
        want_email, want_mobile = "email" in job.outputs, "mobile" in job.outputs
        people = [r.output.person_id for r in todo if r.output.person_id is not None]
        charged, shown = self.store.person_credits(job.job_id, people)
        shares = credits_to_show([r.output.person_id for r in todo], charged, shown)
        paid = self._paid_before(job.team_id, [p for p in set(people) if not charged.get(p)])
        paid |= {p for p in shown if shown[p]}
        writes: dict[str, dict[int, str]] = {kind: {} for kind in job.outputs}
        settled = []
        for r, credits in zip(todo, shares, strict=True):
            out = r.output
            pid = out.person_id
            status = row_status(out, want_email=want_email, want_mobile=want_mobile, credits=credits,
                                paid_before=pid in paid)
            if pid is not None and (credits or out.found):
                paid.add(pid)  # the person's later rows in this job are free
            place = placements.get(r.sheet_row)
            target = place.target_row if place is not None else None
            if target is None:
                settled.append(Settled(r.row_index, CHANGED, ROW_CHANGED, credits, None))
                continue
            kept = False
            for kind, value in (("email", status.email), ("mobile", status.mobile), ("status", status.text)):
                if kind not in job.outputs or not value:
                    continue
                have = grid.cell(job.outputs[kind], target)
                if have == value:
                    continue  # written by a pass that died before recording it
                if have and not (kind == "status" and have.startswith(OURS_PREFIXES)):
                    kept = True
                    continue
                if kind == "status" and have:  # an earlier job's status replaced: its credits still count
                    value = with_credits(value, credits + credits_in(have))
                writes[kind][target] = value
            settled.append(Settled(r.row_index, status.outcome, status.text, credits, target, kept))
        if job.header_row > 0:
            for kind, header in job.output_headers.items():
                if kind in job.outputs and header and not grid.cell(job.outputs[kind], job.header_row):
                    writes[kind][job.header_row] = header
        return settled, writes

    def _paid_before(self, team_id: int, person_ids: list[int]) -> set[int]:
        if not person_ids:
            return set()
        out: set[int] = set()
        with read_transaction(self.engine) as conn:
            for start in range(0, len(person_ids), 500):
                part = person_ids[start : start + 500]
                out |= set(conn.execute(
                    select(_DR.c.person_id).where(
                        _DR.c.team_id == team_id, _DR.c.person_id.in_(part),
                        _DR.c.status == DataRequestStatus.CHARGED.value,
                    ).distinct()
                ).scalars())
        return out

    def _unavailable(
        self, job: SheetsJobInfo, sheet: SheetGateway, exc: SheetUnavailable, rows: int, token: str
    ) -> PassResult:
        if exc.kind == "bad_request" and self._renamed(job, sheet):
            return PassResult("unavailable", rows)  # the next pass uses the sheet's new name
        if exc.kind == "unauthorized":
            self.store.refuse_token(job.job_id, token_sha256(token), waiting_message(rows))
            return PassResult("lost_token", rows)
        if exc.kind in ("not_found", "forbidden", "bad_request"):
            log.warning("sheets job %s: sheet unavailable (%s): job ended", job.job_id, exc.kind)
            self.jobs.cancel(job.job_id)  # stop spending on rows that can no longer be written
            self.store.set_state(job.job_id, FAILED, SHEET_GONE, drop_token=True)
            return PassResult("failed", rows)
        log.warning("sheets job %s: Sheets API unavailable; the next poll retries", job.job_id)
        return PassResult("unavailable", rows)

    def _renamed(self, job: SheetsJobInfo, sheet: SheetGateway) -> bool:
        try:
            title = sheet.sheet_title(job.sheet_id)
        except SheetUnavailable:
            return False
        if title == job.sheet_name:
            return False
        self.store.rename(job.job_id, title)
        return True

    def _finish(self, job: SheetsJobInfo) -> PassResult:
        if self.store.ready(job.job_id, include_unenriched=True):
            return PassResult("nothing")
        counts = self.store.counts(job.job_id)
        enrichment = self.jobs.job(job.job_id)
        if enrichment.status == JobStatus.CANCELLED:
            state, message = CANCELLED, "Cancelled: the rows enriched before are written"
        elif counts.get(NOT_ENRICHED, 0):
            state, message = INCOMPLETE, f"{counts[NOT_ENRICHED]} rows not enriched: retry them"
        else:
            state, message = DONE, "Done"
        self.store.set_state(job.job_id, state, message, drop_token=True)
        return PassResult("finished")


def credits_to_show(people: list[int | None], charged: dict[int, int], shown: dict[int, int]) -> list[int]:
    """The credits each row of a pass reports: a person's credits charged by the job (over its stored
    rows) less what earlier passes showed, on the person's first row in this pass; 0 elsewhere. So
    whatever the passes and the order rows became ready in, each person's credits are shown once."""
    left = {p: max(0, charged.get(p, 0) - shown.get(p, 0)) for p in people if p is not None}
    out = []
    for person in people:
        out.append(left.get(person, 0) if person is not None else 0)
        if person is not None:
            left[person] = 0
    return out


class _Columns:
    """The columns read by a pass, by letter; row r (1-based) of each."""

    def __init__(self, letters: list[str], answers: list[list[list[str]]]) -> None:
        self.values: dict[str, list[str]] = {}
        for col, rows in zip(letters, answers, strict=True):
            self.values[col] = [str(row[0]) if row else "" for row in rows]
        self.height = max((len(v) for v in self.values.values()), default=0)

    def cell(self, col: str, row: int) -> str:
        values = self.values.get(col, [])
        return values[row - 1] if 0 < row <= len(values) else ""


def _column_of(rng: str) -> str:
    cell = rng.rsplit("!", 1)[-1].split(":", 1)[0]
    return cell.rstrip("0123456789")


def _updates(job: SheetsJobInfo, writes: dict[str, dict[int, str]]) -> list[tuple[str, list[list[str]]]]:
    """Each output column's cells to write as runs of consecutive rows: few ranges, one request."""
    updates = []
    for kind in sorted(writes):
        col = job.outputs[kind]
        rows = sorted(writes[kind])
        start = 0
        while start < len(rows):
            end = start
            while end + 1 < len(rows) and rows[end + 1] == rows[end] + 1:
                end += 1
            a, b = rows[start], rows[end]
            values = [[writes[kind][r]] for r in rows[start : end + 1]]
            updates.append((quoted(job.sheet_name, f"{col}{a}:{col}{b}"), values))
            start = end + 1
    return updates


__all__ = ["SHEET_GONE", "WRITE_MIN_ROWS", "PassResult", "SheetsWriter", "waiting_message"]
