"""The Sheets add-on's service: who is asking, what the selection holds, the exact preview, and jobs
that run on the workers (core/enrichment/chunks.py, as `enrich --on-workers` and the API's) with what a
sheet needs beside them (core/sheets/store.py), written back by core/sheets/writer.py.

Same rules as CSV: header detection (core.enrichment.headers), row rules (csv_enrich.row_input), data
requests charged net-new per team and person (so two members enriching one sheet pay once), the exact
preview (core.enrichment.estimate), the spend cap as the job's one hold; feature `sheets` in the usage
log. The member's OAuth access token is kept only while the job lasts, encrypted (core/secrets.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import Engine

from core.accounts import Accounts
from core.actors import require_see_balance, require_spend
from core.enrichment.chunks import ChunkEngine
from core.enrichment.csv_enrich import row_input
from core.enrichment.estimate import CostEstimate, estimate_cost
from core.enrichment.headers import HeaderMap
from core.enrichment.jobs import EnrichmentJobs, JobOptions
from core.enrichment.rows import RowInput
from core.errors import InvalidInput, NotFound
from core.secrets import SecretBox
from core.sheets.a1 import column_index, quoted
from core.sheets.identity import SheetsCaller, SheetsIdentities
from core.sheets.placement import place_rows, row_fingerprint
from core.sheets.selection import (
    SheetRow,
    header_map_for,
    mapping_letters,
    read_selection,
    resolve_outputs,
    sheet_rows,
)
from core.sheets.statuses import NOT_ENRICHED, OUTCOMES
from core.sheets.store import ENRICHING, FINAL_STATES, WAITING, NewRow, SheetsJobInfo, SheetsStore, token_sha256
from core.sheets.types import (
    JobRequest,
    JobSummary,
    JobView,
    OutputColumn,
    PreviewView,
    SelectionView,
    SessionView,
    SheetGateway,
    SheetRef,
)
from core.sheets.writer import REFUSED_TOKEN_MESSAGE, SheetsWriter, waiting_message
from storage.limits import MAX_NAME_CHARS
from storage.models.enrichment import JobStatus
from storage.models.enums import Feature

log = logging.getLogger(__name__)
MAX_JOB_ID = 2**31 - 1


class SheetsService:
    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        jobs: EnrichmentJobs,
        chunks: Callable[[], ChunkEngine],
        secret_box: Callable[[], SecretBox],
        *,
        max_rows: int,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.jobs = jobs
        self.chunks = chunks
        self.secret_box = secret_box
        self.max_rows = max_rows
        self.identities = SheetsIdentities(engine, accounts)
        self.store = SheetsStore(engine)
        self.writer = SheetsWriter(engine, self.store, jobs, chunks, secret_box)
        # Installed by the task registry (sheets_addon/tasks.py): enqueue a write pass on the workers.
        self.enqueue_write: Callable[[int], None] | None = None

    # ---- the sidebar's calls -----------------------------------------------------------------

    def session(self, caller: SheetsCaller) -> SessionView:
        require_see_balance(caller.actor)
        balance = self.accounts.ledger.balance(caller.team.id).available_credits
        name = caller.account.name or caller.member.email
        member, team = caller.member, caller.team
        return SessionView(member.email, name, team.id, team.name, member.role.value, balance)

    def selection(self, caller: SheetsCaller, sheet: SheetGateway, ref: SheetRef) -> SelectionView:
        require_see_balance(caller.actor)
        sel = read_selection(sheet, ref, self.max_rows)
        return SelectionView(sel.header_row, sel.first_data_row, sel.last_data_row, len(sel.rows), self.max_rows,
                             sel.columns(), sel.outputs)

    def preview(self, caller: SheetsCaller, sheet: SheetGateway, request: JobRequest) -> PreviewView:
        require_spend(caller.actor)
        _, _, outputs, rows = self._read(sheet, request)
        return _preview(rows, self._estimate(caller, rows, request), request, outputs)

    def submit(self, caller: SheetsCaller, sheet: SheetGateway, request: JobRequest, token: str) -> JobView:
        """Plan and price the selection, create the job (and its cap's hold), hand it to the workers."""
        require_spend(caller.actor)
        token = _check_token(token)
        sel, header_map, outputs, rows = self._read(sheet, request)
        job_id = self._start(caller, request, rows, self._needed(caller, rows, request), dict(
            spreadsheet_id=request.sheet.spreadsheet_id, sheet_id=request.sheet.sheet_id,
            sheet_name=sel.sheet.sheet_name, header_row=sel.header_row, mapping=mapping_letters(sel, header_map),
            outputs={k: c.letter for k, c in outputs.items()}, output_headers={k: c.header for k, c in outputs.items()},
        ), token)
        return self.view(job_id)

    def poll(self, caller: SheetsCaller, job_id: int, token: str | None) -> JobView:
        """The sidebar's heartbeat: keep its fresh token, and start a write pass when one is due."""
        sj = self._own(caller, job_id)
        sha256 = None
        if token and not sj.final:
            token = _check_token(token)
            sha256 = token_sha256(token)
            # The token Google refused, sent again (the sidebar's cached one), is not kept: it would
            # wake the job only for Google to refuse it again, on every poll.
            kept = self.store.set_token(job_id, self.secret_box().encrypt(token), sha256)
            if kept and sj.state == WAITING:
                self.store.set_state(job_id, ENRICHING, None)
        self._maybe_write(job_id)
        return self.view(job_id, sent_token_sha256=sha256)

    def chunk_stored(self, job_id: int) -> None:
        """A worker stored a chunk of job `job_id`: if it is a Sheets job, its write pass starts as
        soon as enough rows are ready, or the enrichment is over, not at the sidebar's next poll."""
        sj = self.store.job(job_id)
        if sj is not None and not sj.final:
            self._maybe_write(job_id)

    def cancel(self, caller: SheetsCaller, job_id: int) -> JobView:
        require_spend(caller.actor)
        self._own(caller, job_id)
        self.jobs.cancel(job_id)  # the hold is released now; rows enriched before are still written
        self._maybe_write(job_id, force=True)
        return self.view(job_id)

    def retry(self, caller: SheetsCaller, sheet: SheetGateway, job_id: int, token: str,
              max_credits: int | None) -> JobView:
        """A new job over the rows the old one did not enrich (spend cap, empty wallet, cancel), found
        again where they are now; what was paid is not paid again (data requests are net-new)."""
        require_spend(caller.actor)
        token = _check_token(token)
        old = self._own(caller, job_id)
        wanted = {r.sheet_row for r in self.store.rows(job_id) if r.outcome == NOT_ENRICHED}
        if not wanted:
            raise InvalidInput(f"job: job {job_id} has no rows left to retry", field="job")
        rows, header_map = self._current_rows(old, sheet, wanted)
        if not rows:
            raise InvalidInput(f"job: the rows of job {job_id} changed or were deleted; select them again", field="job")
        enr = self.jobs.job(job_id)
        request = JobRequest(
            SheetRef(old.spreadsheet_id, old.sheet_id, old.sheet_name, ""), tuple(old.mapping.items()),
            enr.options.want_email, enr.options.want_mobile, max_credits=max_credits,
        )
        new_id = self._start(caller, request, rows, self._needed(caller, rows, request), dict(
            spreadsheet_id=old.spreadsheet_id, sheet_id=old.sheet_id, sheet_name=old.sheet_name,
            header_row=old.header_row, mapping=old.mapping, outputs=old.outputs, output_headers={},
            retry_of=old.job_id,
        ), token)
        return self.view(new_id)

    def view(self, job_id: int, *, sent_token_sha256: str | None = None) -> JobView:
        """The job as the sidebar shows it (`sent_token_sha256`: of the token the caller sent, if any)."""
        sj = self.store.job(job_id)
        if sj is None:
            raise NotFound(f"no Sheets job {job_id}")
        refused = sent_token_sha256 is not None and sent_token_sha256 == sj.refused_token_sha256
        return _view(sj, self.jobs.job(job_id), self.store.counts(job_id), self.store.count_ready(job_id), refused)

    def spreadsheet_of(self, caller: SheetsCaller, job_id: int) -> str:
        """The spreadsheet of one of the caller's team's jobs (NotFound otherwise)."""
        return self._own(caller, job_id).spreadsheet_id

    # ---- helpers -----------------------------------------------------------------------------

    def _own(self, caller: SheetsCaller, job_id: int) -> SheetsJobInfo:
        sj = self.store.job(job_id) if 0 < job_id <= MAX_JOB_ID else None
        if sj is None or sj.team_id != caller.team.id:
            raise NotFound(f"no Sheets job {job_id}")
        return sj

    def _maybe_write(self, job_id: int, *, force: bool = False) -> None:
        if self.enqueue_write is None or self.store.writing_busy(job_id):
            return
        if force or self.store.count_ready(job_id) >= self.writer.min_rows or self.writer.enrichment_over(job_id):
            self.enqueue_write(job_id)

    def _read(self, sheet: SheetGateway, request: JobRequest):
        sel = read_selection(sheet, request.sheet, self.max_rows)
        header_map = header_map_for(sel, request.mapping)
        outputs = resolve_outputs(sel, request, header_map)
        return sel, header_map, outputs, sheet_rows(sel, header_map)

    def _needed(self, caller: SheetsCaller, rows: Sequence[SheetRow], request: JobRequest) -> int | None:
        """What a capped job can need, to size its hold; an uncapped job holds nothing, so the start
        call does not match and price the selection again (the preview did, for the marketer)."""
        if request.max_credits is None:
            return None
        return self._estimate(caller, rows, request).max_uncapped_credits

    def _estimate(self, caller: SheetsCaller, rows: Sequence[SheetRow], request: JobRequest) -> CostEstimate:
        if request.max_credits is not None and request.max_credits < 0:
            raise InvalidInput("max_credits: must be 0 or more", field="max_credits")
        return estimate_cost(
            self.engine, self.accounts, caller.team.id, (r.item for r in rows),
            want_email=request.want_email, want_mobile=request.want_mobile, max_credits=request.max_credits,
        )

    def _start(self, caller: SheetsCaller, request: JobRequest, rows: Sequence[SheetRow], needed_credits: int | None,
               values: dict, token: str) -> int:
        if not (request.want_email or request.want_mobile):
            raise InvalidInput("want: ask for email, mobile or both", field="want")
        sealed = self.secret_box().encrypt(token)  # before anything is held: no job without its token
        options = JobOptions(request.want_email, request.want_mobile, request.max_credits, Feature.SHEETS)
        fingerprint = hashlib.sha256(
            json.dumps([values["spreadsheet_id"], values["sheet_id"], [r.fingerprint for r in rows]]).encode()
        ).hexdigest()
        job = self.jobs.start(
            caller.team.id, caller.member.id, options, label=f"Sheets: {values['sheet_name']}"[:MAX_NAME_CHARS],
            fingerprint=fingerprint, total_rows=len(rows), needed_credits=needed_credits,
        )
        self.store.create(
            dict(values, job_id=job.id, team_id=caller.team.id, member_id=caller.member.id, state=ENRICHING,
                 token_encrypted=sealed, token_sha256=token_sha256(token)),
            [NewRow(i, r.sheet_row, r.fingerprint, r.blank) for i, r in enumerate(rows)],
        )
        inputs = [(list(r.cells), replace(r.item, index=i)) for i, r in enumerate(rows)]
        self.chunks().submit(job, inputs, {"label": job.label, "sheets": True})
        log.info("sheets job submitted", extra={"job_id": job.id, "rows": len(rows)})
        return job.id

    def _current_rows(self, old: SheetsJobInfo, sheet: SheetGateway, wanted: set[int]):
        """The old job's rows `wanted` (by original sheet row), read where they are now."""
        letters = sorted(old.mapping.values(), key=column_index)
        answers = sheet.read([quoted(old.sheet_name, f"{col}1:{col}") for col in letters])
        columns = [[str(r[0]) if r else "" for r in a] for a in answers]
        height = max((len(c) for c in columns), default=0)

        def cells_at(row: int) -> list[str]:
            return [c[row - 1] if row <= len(c) else "" for c in columns]

        current = {
            r: row_fingerprint(cells_at(r)) for r in range(1, height + 1)
            if r != old.header_row and any(x.strip() for x in cells_at(r))
        }
        placements = place_rows(self.store.expected(old.job_id), current)
        header_map = HeaderMap(tuple(letters), tuple(sorted(
            ((field, letters.index(letter)) for field, letter in old.mapping.items()),
            key=lambda c: c[1],
        )))
        rows = []
        for original in sorted(wanted):
            place = placements.get(original)
            if place is None or place.target_row is None:
                continue
            cells = cells_at(place.target_row)
            item: RowInput = row_input(header_map, len(rows), cells)
            rows.append(SheetRow(place.target_row, tuple(cells), item, row_fingerprint(cells), False))
        return rows, header_map


def _check_token(token: str | None) -> str:
    token = (token or "").strip()
    if not token or len(token) > 4096:
        raise InvalidInput("oauth_token: missing; the sidebar sends ScriptApp.getOAuthToken()", field="oauth_token")
    return token


def _preview(rows: Sequence[SheetRow], est: CostEstimate, request: JobRequest,
             outputs: dict[str, OutputColumn]) -> PreviewView:
    without = sum(1 for r in rows if r.item.problem is not None)
    free = est.already_paid_emails if request.want_email else est.already_paid_mobiles
    return PreviewView(
        rows=len(rows), rows_with_identifier=len(rows) - without, rows_without_identifier=without,
        max_credits=est.max_credits, free_rows=free, balance_credits=est.available_credits,
        cap_credits=request.max_credits, affordable=est.short_credits == 0, outputs=outputs,
    )


def _view(sj: SheetsJobInfo, enr, counts: dict[str, int], ready: int, token_refused: bool) -> JobView:
    total = sj.rows_total
    settled = sum(counts.get(o, 0) for o in OUTCOMES)
    if sj.state in FINAL_STATES:
        status = sj.state
    elif sj.state == WAITING and ready:
        status = "waiting_for_token"
    elif enr.status == JobStatus.RUNNING:
        status = "queued" if enr.progress.done_rows == 0 else "running"
    else:
        status = "writing"
    percent = 100 if total == 0 else min(100, (100 * (enr.progress.done_rows + settled)) // (2 * total))
    if sj.state in FINAL_STATES and sj.state != "failed":
        percent = 100
    message = sj.message
    if status == "waiting_for_token":  # the count of now, not of the pass that found no token
        message = REFUSED_TOKEN_MESSAGE.format(rows=ready) if token_refused else waiting_message(ready)
    elif message is None and status in ("queued", "running"):
        message = f"Enriching: {enr.progress.done_rows} of {total} rows"
    summary = JobSummary(**{k: counts.get(k, 0) for k in (*OUTCOMES, "kept")}) if sj.state in FINAL_STATES else None
    return JobView(
        job_id=sj.job_id, status=status, rows_total=total, rows_done=enr.progress.done_rows,
        rows_written=sj.rows_written, rows_waiting=ready, credits_spent=enr.progress.charged_credits,
        percent=percent, message=message, summary=summary, retryable_rows=counts.get(NOT_ENRICHED, 0),
    )


__all__ = ["SheetsService"]
