"""Enrichment jobs: rows in, enriched rows out, in order — for CSV files now, Sheets and Slack next.

What a job guarantees:
- Spend cap: with `max_credits`, the job takes ONE ledger hold of that size and every data request
  posts its price from it (core.data_requests.Budget), so the job can never spend more. Without a
  cap, a request that finds something chargeable is charged from the wallet when it settles
  (Budget.uncapped): no per-request hold and void, and still only what is found is paid.
- No double charge: data requests are net-new per (team, person, kind), so a person is paid for at
  most once whatever happens; each person is also looked up once per job (duplicates share it).
- Resumption: every settled row is stored (enrichment_row, keyed by job id and row index) in input
  order, so the stored rows are always a prefix of the input. A re-run after a crash writes those
  back from the table without a lookup and continues after them.
- Progress (done/total, matched, found, errors, credits) goes to a callback and onto the job row.
- Cancellation: `cancel` sets a flag and releases the hold at once; a running job sees the flag at
  its next flush, stops looking up, and marks the rows it did not reach.

Throughput: lookups are network-bound, so rows run on a bounded thread pool with a window of rows
in flight; matching runs a chunk at a time (core.people.matching's batch cache) ahead of the lookups.
Output order is the input order whatever finishes first. People are looked up in batches
(DataRequests.access_people): a batch's email and mobile requests are claimed in one write
transaction and settled in one, the waterfall's call log and write-back riding in the settle, with
the lookups in between on the pool; team, member and waterfall are read once per run.

Which row "paid": the first row (in input order) of a person gets the credits its lookup charged;
later rows of the same person show 0. A row redone after a crash whose data request had already been
charged shows the credits when this job paid them (same member, same front end, settled after the job
started) and no earlier stored row has that person, so a resumed run writes what an uninterrupted
one would have.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice

from sqlalchemy import Connection, Engine, and_, case, insert, select, update

from core.accounts import Accounts, MemberInfo, TeamInfo
from core.data_requests import AccessResult, Budget, BudgetExhausted, DataRequests
from core.enrichment.rows import NOT_ENRICHED_CAP, NOT_ENRICHED_CREDITS, RowInput, RowOutput
from core.errors import InvalidInput, NotFound, TributaryError, check
from core.ledger import HoldNotPending, InsufficientCredits, UsageMeta
from core.people.matching import CompanyCache, MatchOutcome, MatchResult, match_contacts
from core.people.resolve import resolve_person
from storage.bulk_rows import BulkInsert
from storage.db import read_transaction, run_write
from storage.limits import MAX_HEX_DIGEST_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS
from storage.models import EmailAddress, EnrichmentJob, EnrichmentRow, LedgerHold
from storage.models.enrichment import RESUMABLE_STATUSES, JobStatus
from storage.models.enums import Category, DataKind, DataRequestStatus, Feature, HoldStatus
from storage.timeutil import as_utc, utcnow

_JOB = EnrichmentJob.__table__
_ROW = EnrichmentRow.__table__
# A job's output rows; one already stored (by a run that raced this one) is kept as it is.
STORE_ROWS = BulkInsert(
    _ROW,
    columns=["job_id", "row_index", "person_id", "credits_charged", "output", "created_at"],
    skip_conflicts_on=["job_id", "row_index"],
)
_EMAIL = EmailAddress.__table__
_HOLD = LedgerHold.__table__
_RESUMABLE = [s.value for s in RESUMABLE_STATUSES]

DEFAULT_WORKERS = 16
DEFAULT_HOLD_TIMEOUT_S = 24 * 3600
CHUNK_ROWS = 500  # rows matched (and checked against stored rows) together
FLUSH_ROWS = 500  # settled rows stored, and progress saved, per transaction
BATCH_PEOPLE = 32  # people claimed and settled per pair of write transactions
MAX_BATCHES_IN_FLIGHT = 16
# People remembered for in-job dedupe. A person evicted and seen again is looked up again: a charged
# request replays free (requests are net-new), a free one asks the sources again.
PERSON_CACHE_SIZE = 100_000
CANCELLED_ERROR = "not enriched: the job was cancelled"

ProgressCallback = Callable[["JobProgress"], None]


@dataclass(frozen=True)
class JobOptions:
    want_email: bool
    want_mobile: bool
    max_credits: int | None = None  # None: no cap (each request holds its own price)
    feature: Feature = Feature.CSV


@dataclass(frozen=True)
class JobProgress:
    total_rows: int | None
    done_rows: int
    matched_rows: int
    found_rows: int
    error_rows: int
    charged_credits: int


@dataclass(frozen=True)
class JobInfo:
    id: int
    team_id: int
    member_id: int
    label: str
    input_fingerprint: str
    options: JobOptions
    status: JobStatus
    cancel_requested: bool
    hold_id: int | None
    progress: JobProgress
    runs: int
    created_at: datetime
    finished_at: datetime | None
    had_earlier_holds: bool = False  # a resume replaced an expired cap hold
    spent_before_hold_credits: int = 0  # spent by earlier runs, outside the current hold
    held_credits: int = 0  # what the job's live hold still reserves (0 once it stopped)


@dataclass(frozen=True, slots=True)  # slots: the dedupe cache holds up to PERSON_CACHE_SIZE of them
class _PersonOutcome:
    """One person's lookup in this job, shared by every row that names them."""

    person_id: int
    email: str = ""
    email_status: str = ""
    email_score: str = ""
    mobile_phone: str = ""
    phone_status: str = ""
    office_phone: str = ""
    title: str = ""
    company: str = ""
    domain: str = ""
    linkedin_url: str = ""
    credits: int = 0
    error: str = ""


class _PersonEntry:
    """A person's lookup in this job. Once its outcome has been read, the Future (a condition, a lock
    and a waiter list: most of an entry's memory) is dropped and the plain outcome kept."""

    __slots__ = ("future", "outcome", "attributed")

    def __init__(self) -> None:
        self.future: Future[_PersonOutcome] | None = Future()
        self.outcome: _PersonOutcome | None = None
        self.attributed = False  # the credits went to a row already

    def done(self) -> bool:
        return self.future is None or self.future.done()

    def result(self) -> _PersonOutcome:
        """Called by the run's own thread only (rows are settled there)."""
        if self.outcome is None:
            check(self.future is not None, "a person's lookup was started before its result is asked for")
            self.outcome = self.future.result()  # re-raises a failed lookup: the run stops, resumable
            self.future = None
        return self.outcome


@dataclass(frozen=True)
class _Pending:
    index: int
    entry: _PersonEntry
    confidence: str


class _Counters:
    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = self.matched = self.found = self.errors = self.charged = 0

    def add(self, out: RowOutput) -> None:
        self.done += 1
        self.matched += out.matched
        self.found += out.found
        self.errors += bool(out.error) and not out.undone  # undone rows are not errors: resumable
        self.charged += out.credits_charged

    def snapshot(self) -> JobProgress:
        return JobProgress(self.total, self.done, self.matched, self.found, self.errors, self.charged)


class EnrichmentJobs:
    def __init__(
        self,
        engine: Engine,
        data_requests: DataRequests,
        *,
        accounts: Accounts | None = None,
        workers: int = DEFAULT_WORKERS,
        hold_timeout_s: int = DEFAULT_HOLD_TIMEOUT_S,
        person_cache_size: int = PERSON_CACHE_SIZE,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        if workers < 1:
            raise InvalidInput(f"workers: must be at least 1, got {workers}")
        self.engine = engine
        self.data_requests = data_requests
        self.accounts = accounts or data_requests.accounts
        self.ledger = self.accounts.ledger
        self.workers = workers
        self.hold_timeout_s = hold_timeout_s
        self.person_cache_size = person_cache_size
        self.flush_rows = max(1, flush_rows)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(
        self,
        team_ref: int | str,
        member_ref: int | str,
        options: JobOptions,
        *,
        label: str,
        fingerprint: str,
        total_rows: int | None = None,
        needed_credits: int | None = None,
    ) -> JobInfo:
        """Create a job and take its spend-cap hold, in one transaction: no job without its cap.

        A cap is a ceiling, not a demand: the hold is what the job can need (`needed_credits`, the
        preview's maximum), at most the cap and at most what the team has (see `_capped_hold`)."""
        team = self.accounts.team(team_ref)
        member = self.accounts.member(member_ref, team.id)
        if options.max_credits is not None and options.max_credits < 0:
            raise InvalidInput(f"max_credits: must be 0 or more, got {options.max_credits}")
        now = utcnow()
        available = self.ledger.balance(team.id).available_credits if options.max_credits is not None else 0

        def op(conn: Connection) -> int:
            job_id = conn.execute(
                insert(_JOB)
                .values(
                    team_id=team.id,
                    member_id=member.id,
                    feature=Feature(options.feature).value,
                    label=label[:MAX_NAME_CHARS],
                    input_fingerprint=fingerprint[:MAX_HEX_DIGEST_CHARS],
                    want_email=options.want_email,
                    want_mobile=options.want_mobile,
                    max_credits=options.max_credits,
                    spent_before_hold_credits=0,
                    status=JobStatus.RUNNING.value,
                    cancel_requested=False,
                    total_rows=total_rows,
                    done_rows=0,
                    matched_rows=0,
                    found_rows=0,
                    error_rows=0,
                    charged_credits=0,
                    runs=1,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_JOB.c.id)
            ).scalar_one()
            if options.max_credits is not None:
                amount = _hold_amount(options.max_credits, needed_credits, available)
                hold = self._capped_hold(conn, team, member, job_id, label, options, amount, "1", now)
                conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(hold_id=hold))
            return job_id

        return self.job(run_write(self.engine, op))

    def resumable(self, team_ref: int | str, fingerprint: str, options: JobOptions) -> JobInfo | None:
        """The latest unfinished job of this team over the same input with the same options."""
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            job_id = conn.execute(
                select(_JOB.c.id)
                .where(
                    _JOB.c.team_id == team.id,
                    _JOB.c.input_fingerprint == fingerprint,
                    _JOB.c.status.in_(_RESUMABLE),
                    _JOB.c.want_email == options.want_email,
                    _JOB.c.want_mobile == options.want_mobile,
                    _JOB.c.feature == Feature(options.feature).value,
                )
                .order_by(_JOB.c.id.desc())
                .limit(1)
            ).scalar()
        return None if job_id is None else self.job(job_id)

    def resume(
        self, job_id: int, *, max_credits: int | None = None, needed_credits: int | None = None
    ) -> JobInfo:
        """Count another run. `max_credits` (None: keep the job's) is the cap of the whole job, what
        earlier runs spent included. A live hold of an unchanged cap is kept (a crashed run's); else a
        new one is taken for what is left of the cap, sized as in `start`."""
        job = self.job(job_id)
        if job.status not in RESUMABLE_STATUSES:
            raise InvalidInput(f"job {job_id} is {job.status}: only an unfinished job can be resumed")
        if max_credits is not None and max_credits < 0:
            raise InvalidInput(f"max_credits: must be 0 or more, got {max_credits}")
        team = self.accounts.team(job.team_id)
        member = self.accounts.member(job.member_id, team.id)
        cap = job.options.max_credits if max_credits is None else max_credits
        available = self.ledger.balance(team.id).available_credits + job.held_credits if cap is not None else 0
        now = utcnow()

        def op(conn: Connection) -> None:
            row = conn.execute(select(_JOB).where(_JOB.c.id == job_id).with_for_update()).one()
            values: dict = {"runs": row.runs + 1, "updated_at": now, "status": JobStatus.RUNNING.value}
            hold = self.ledger.hold_in(conn, row.hold_id) if row.hold_id is not None else None
            live = hold is not None and hold.status == HoldStatus.PENDING and as_utc(hold.expires_at) > now
            if live and cap == row.max_credits:
                conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(**values))
                return
            # What the job spent so far: posted from its holds, or charged from the wallet (no cap).
            spent = max(row.spent_before_hold_credits + (hold.posted_credits if hold else 0), row.charged_credits)
            self._release_hold(conn, row.team_id, row.hold_id, f"enrich-job:{job_id}:release:{row.runs + 1}", now)
            values.update(max_credits=cap, spent_before_hold_credits=spent, hold_id=None)
            if cap is not None:
                amount = _hold_amount(cap - spent, needed_credits, available)
                options = replace(job.options, max_credits=cap)
                values["hold_id"] = self._capped_hold(
                    conn, team, member, job_id, row.label, options, amount, str(row.runs + 1), now
                )
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(**values))

        run_write(self.engine, op)
        return self.job(job_id)

    def cancel(self, job_id: int) -> JobInfo:
        """Stop a job: its hold is released now; a running job stops at its next flush."""
        job = self.job(job_id)
        now = utcnow()

        def op(conn: Connection) -> None:
            row = conn.execute(select(_JOB).where(_JOB.c.id == job_id).with_for_update()).one()
            if row.status not in _RESUMABLE:
                return
            self._release_hold(conn, row.team_id, row.hold_id, f"enrich-job:{job_id}:cancel", now)
            conn.execute(
                update(_JOB)
                .where(_JOB.c.id == job_id)
                .values(cancel_requested=True, status=JobStatus.CANCELLED.value, finished_at=now, updated_at=now)
            )

        run_write(self.engine, op)
        return self.job(job.id)

    def interrupt(self, job_id: int) -> JobInfo:
        """The user stopped a run (Ctrl-C). The rule: an interrupted job holds nothing, its hold is
        released at once (the credits are the team's again); `--resume` takes a new one, or
        `enrich-jobs cancel` ends the job."""
        now = utcnow()

        def op(conn: Connection) -> None:
            row = conn.execute(select(_JOB).where(_JOB.c.id == job_id).with_for_update()).one()
            if row.status != JobStatus.RUNNING.value:
                return
            self._release_hold(conn, row.team_id, row.hold_id, f"enrich-job:{job_id}:interrupt:{row.runs}", now)
            conn.execute(
                update(_JOB).where(_JOB.c.id == job_id).values(status=JobStatus.INTERRUPTED.value, updated_at=now)
            )

        run_write(self.engine, op)
        return self.job(job_id)

    def job(self, job_id: int) -> JobInfo:
        with read_transaction(self.engine) as conn:
            row = conn.execute(_with_held(utcnow()).where(_JOB.c.id == job_id)).one_or_none()
        if row is None:
            raise NotFound(f"no enrichment job {job_id}")
        return _job_info(row)

    def jobs(self, team_ref: int | str, *, limit: int = 50) -> list[JobInfo]:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                _with_held(utcnow()).where(_JOB.c.team_id == team.id).order_by(_JOB.c.id.desc()).limit(limit)
            ).all()
        return [_job_info(r) for r in rows]

    # ---- running ---------------------------------------------------------------------------

    def run(
        self, job_id: int, rows: Iterable[RowInput], *, on_progress: ProgressCallback | None = None
    ) -> Iterator[RowOutput]:
        """Yield one output per input row, in input order. `rows` must be the job's whole input, from
        the first row, every run (stored rows are written back, not looked up)."""
        job = self.job(job_id)
        if job.status != JobStatus.RUNNING:
            raise InvalidInput(f"job {job_id} is {job.status}: resume it to run it again")
        run = _JobRun(self, job)
        try:
            yield from run.outputs(rows, on_progress)
        finally:
            run.close()

    # ---- helpers used by a run -------------------------------------------------------------

    def _take_hold(
        self,
        conn: Connection,
        team: TeamInfo,
        member: MemberInfo,
        job_id: int,
        label: str,
        options: JobOptions,
        amount: int,
        run: str,
        now: datetime,
    ) -> int:
        hold = self.ledger.hold(
            team.id,
            amount,
            key=f"enrich-job:{job_id}:hold:{run}",
            timeout_s=self.hold_timeout_s,
            meta=UsageMeta(
                category=Category.ENRICHMENT,
                feature=Feature(options.feature),
                member_id=member.id,
                action="enrichment_cap",
                description=f"Spend cap of enrichment job {job_id} ({label})"[:MAX_TEXT_CHARS],
            ),
            now=now,
            conn=conn,
        )
        return hold.id

    def _capped_hold(
        self,
        conn: Connection,
        team: TeamInfo,
        member: MemberInfo,
        job_id: int,
        label: str,
        options: JobOptions,
        amount: int,
        run: str,
        now: datetime,
    ) -> int | None:
        """A cap's hold of `amount` (None when it is 0: nothing can be charged). If the team spent
        meanwhile, what it has left is held instead."""
        if amount <= 0:
            return None
        try:
            return self._take_hold(conn, team, member, job_id, label, options, amount, run, now)
        except InsufficientCredits as exc:
            if exc.available_credits <= 0:
                return None
            amount = min(amount, exc.available_credits)
            return self._take_hold(conn, team, member, job_id, label, options, amount, f"{run}b", now)

    def _release_hold(self, conn: Connection, team_id: int, hold_id: int | None, key: str, now: datetime) -> None:
        if hold_id is None:
            return
        try:
            self.ledger.void(team_id, hold_id, key=key, now=now, conn=conn)
        except HoldNotPending:
            pass  # fully spent: nothing left to release


def _hold_amount(cap_left: int, needed: int | None, available: int) -> int:
    """A cap's hold: what the job can need (at least 1, so people already paid for still replay from a
    hold), at most what is left of the cap and what the team has."""
    need = cap_left if needed is None else max(needed, 1)
    return max(0, min(cap_left, need, available))


def _with_held(now: datetime):
    """A job row with what its hold still reserves (0 when the hold is gone, spent or timed out)."""
    live = and_(_HOLD.c.status == HoldStatus.PENDING.value, _HOLD.c.expires_at > now)
    held = case((live, _HOLD.c.amount - _HOLD.c.posted_amount), else_=0).label("held_credits")
    return select(_JOB, held).select_from(_JOB.outerjoin(_HOLD, _HOLD.c.id == _JOB.c.hold_id))


def _job_info(row) -> JobInfo:
    return JobInfo(
        id=row.id,
        team_id=row.team_id,
        member_id=row.member_id,
        label=row.label,
        input_fingerprint=row.input_fingerprint,
        options=JobOptions(row.want_email, row.want_mobile, row.max_credits, Feature(row.feature)),
        status=JobStatus(row.status),
        cancel_requested=row.cancel_requested,
        hold_id=row.hold_id,
        progress=JobProgress(
            row.total_rows, row.done_rows, row.matched_rows, row.found_rows, row.error_rows, row.charged_credits
        ),
        runs=row.runs,
        created_at=as_utc(row.created_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        had_earlier_holds=row.runs > 1 and row.spent_before_hold_credits > 0,
        spent_before_hold_credits=row.spent_before_hold_credits,
        held_credits=int(getattr(row, "held_credits", 0) or 0),
    )


class _JobRun:
    """One run of one job (a fresh start or a resume): the pools, the person cache, the row buffer."""

    def __init__(self, jobs: EnrichmentJobs, job: JobInfo, *, companies: CompanyCache | None = None) -> None:
        self.jobs = jobs
        self.engine = jobs.engine
        self.job = job
        self.team = jobs.accounts.team(job.team_id)
        self.member = jobs.accounts.member(job.member_id, job.team_id)
        # Team, member and waterfall are read once per run, not once per request (the plan's prices
        # and the team's sources are those of the run's start).
        self.sources = {kind: jobs.data_requests.source_for(self.team, kind) for kind in DataKind}
        self.capped_out = job.options.max_credits is not None and job.hold_id is None
        # No cap: requests are charged from the wallet when they find something (Budget.uncapped).
        self.budget = Budget(job.hold_id) if job.hold_id is not None else Budget.uncapped()
        self.pool = ThreadPoolExecutor(max_workers=jobs.workers, thread_name_prefix=f"enrich-{job.id}")
        self.match_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"enrich-{job.id}-match")
        # Companies' people, read once per run rather than once per chunk (a worker's chunk: its job's).
        self.companies = companies if companies is not None else CompanyCache()
        # People are claimed and settled a batch at a time (two write transactions per batch, not per
        # person); enough batches run at once to keep the lookup pool busy while others commit.
        self.batch_people = min(BATCH_PEOPLE, 2 * jobs.workers)
        self.batch_pool = ThreadPoolExecutor(
            max_workers=max(2, min(MAX_BATCHES_IN_FLIGHT, 4 * jobs.workers // self.batch_people)),
            thread_name_prefix=f"enrich-{job.id}-batch",
        )
        self.batch: list[tuple[_PersonEntry, int]] = []
        self.people: OrderedDict[int, _PersonEntry] = OrderedDict()
        self.lock = threading.Lock()
        self.buffer: list[RowOutput] = []
        self.cancelled = False
        self.undone_rows = 0  # rows the cap or the wallet stopped: they make the job `incomplete`
        self._exhausted: str | None = None  # why the cap's hold ran dry (see _exhausted_status)

    def close(self) -> None:
        # Batches first: they wait on lookups queued in the pool.
        self.batch_pool.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.match_pool.shutdown(wait=True, cancel_futures=True)

    # ---- the pipeline ----------------------------------------------------------------------

    def outputs(self, rows: Iterable[RowInput], on_progress: ProgressCallback | None) -> Iterator[RowOutput]:
        counters = _Counters(self.job.progress.total_rows)
        # Items in input order: a stored/finished RowOutput, or a future of one.
        window: deque[RowOutput | _Pending] = deque()
        max_in_flight = self.jobs.workers * 8
        chunks = _chunks(iter(rows), CHUNK_ROWS)
        matching: deque[tuple[list[RowInput], dict[int, RowOutput], Future[list[MatchResult]] | None]] = deque()

        def queue_chunk() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            stored = self._stored(chunk[0].index, chunk[-1].index)
            todo = [r for r in chunk if r.index not in stored and r.problem is None]
            future = self.match_pool.submit(self._match, todo) if todo and not self.cancelled else None
            matching.append((chunk, stored, future))
            return True

        for _ in range(2):  # match one chunk ahead of the lookups
            queue_chunk()
        while matching:
            chunk, stored, future = matching.popleft()
            queue_chunk()
            matches = iter(future.result()) if future is not None else iter(())
            for row in chunk:
                if row.index in stored:
                    window.append(stored[row.index])
                elif self.cancelled:
                    window.append(RowOutput(index=row.index, error=CANCELLED_ERROR))
                elif row.problem is not None:
                    window.append(RowOutput(index=row.index, error=row.problem))
                else:
                    window.append(self._submit(row, next(matches)))
                while len(window) > max_in_flight:
                    yield self._settle(window.popleft(), counters, on_progress)
        while window:
            yield self._settle(window.popleft(), counters, on_progress)
        self._flush(counters, final=True)
        if on_progress:
            on_progress(counters.snapshot())

    def _settle(
        self, item: RowOutput | _Pending, counters: _Counters, on_progress: ProgressCallback | None
    ) -> RowOutput:
        if isinstance(item, _Pending):
            if not item.entry.done():
                self._dispatch()  # about to wait: the person may sit in the batch being filled
            out = self._row_from(item.index, item.entry, item.confidence)
        else:
            out = item
        out = self._attribute(out)
        counters.add(out)
        # Rows left undone are not stored: `--resume` looks exactly those up again.
        self.undone_rows += out.undone
        if out.error != CANCELLED_ERROR and not out.undone:
            self.buffer.append(out)
        if len(self.buffer) >= self.jobs.flush_rows:
            self._flush(counters)
            if on_progress:
                on_progress(counters.snapshot())
        return out

    def _attribute(self, out: RowOutput) -> RowOutput:
        """Credits go to the first row of a person in input order; later rows show 0."""
        if out.person_id is None or out.credits_charged == 0:
            return out
        entry = self.people.get(out.person_id)
        if entry is None:
            return out
        if entry.attributed:
            return _replace_credits(out, 0)
        entry.attributed = True
        return out

    # ---- matching and lookups --------------------------------------------------------------

    def _match(self, rows: list[RowInput]) -> list[MatchResult]:
        return list(
            match_contacts(
                self.engine,
                [r.query for r in rows],
                team_id=self.job.team_id,
                batch_size=max(1, len(rows)),
                cache=self.companies,
            )
        )

    def _submit(self, row: RowInput, match: MatchResult) -> RowOutput | _Pending:
        confidence = f"{match.confidence:.2f}" if match.best else ""
        if match.outcome == MatchOutcome.INVALID:
            detail = (match.error or "").split(": ", 1)[-1]
            return RowOutput(index=row.index, error=f"row {row.index + 1}: {detail}")
        if match.outcome == MatchOutcome.AMBIGUOUS:
            names = "; ".join(
                f"{c.full_name or '?'}" + (f" ({c.domain or c.company})" if c.domain or c.company else "")
                for c in match.candidates[:3]
            )
            return RowOutput(
                index=row.index,
                error=f"row {row.index + 1}: ambiguous match ({names}): add an email or LinkedIn URL to choose",
            )
        best = match.best
        if match.outcome != MatchOutcome.MATCHED or best is None:
            return RowOutput(index=row.index, email_status=self._not_found_status())
        if best.person_id is None:
            # Known only from this team's own uploads: firmographics, nothing to access yet.
            return RowOutput(
                index=row.index,
                title=best.title or "",
                company=best.company or "",
                domain=best.domain or "",
                linkedin_url=best.linkedin_url or "",
                match_confidence=confidence,
                email_status=self._not_found_status(),
            )
        entry, owner = self._entry(best.person_id)
        if owner:
            self._enqueue(entry, best.person_id)
        # Waited on by the caller's thread, never by a pool worker (workers waiting on queued owners
        # could fill the pool and deadlock it).
        return _Pending(row.index, entry, confidence)

    def _not_found_status(self) -> str:
        return "unavailable" if self.job.options.want_email else ""

    def _entry(self, person_id: int) -> tuple[_PersonEntry, bool]:
        with self.lock:
            entry = self.people.get(person_id)
            if entry is not None:
                self.people.move_to_end(person_id)
                return entry, False
            entry = _PersonEntry()
            self.people[person_id] = entry
            return entry, True

    @staticmethod
    def _row_from(index: int, entry: _PersonEntry, confidence: str) -> RowOutput:
        p = entry.result()
        return RowOutput(
            index=index,
            person_id=p.person_id,
            email=p.email,
            email_status=p.email_status,
            email_score=p.email_score,
            mobile_phone=p.mobile_phone,
            phone_status=p.phone_status,
            office_phone=p.office_phone,
            title=p.title,
            company=p.company,
            domain=p.domain,
            linkedin_url=p.linkedin_url,
            credits_charged=p.credits,
            match_confidence=confidence,
            error=p.error,
        )

    def _enqueue(self, entry: _PersonEntry, person_id: int) -> None:
        self.batch.append((entry, person_id))
        if len(self.batch) >= self.batch_people:
            self._dispatch()

    def _dispatch(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.batch_pool.submit(self._lookup_batch, batch)

    def _lookup_batch(self, batch: list[tuple[_PersonEntry, int]]) -> None:
        """A batch of people: their requests claimed in one transaction and settled in one, the
        lookups in between on the lookup pool."""
        opts = self.job.options
        kinds = [k for k, wanted in ((DataKind.EMAIL, opts.want_email), (DataKind.MOBILE, opts.want_mobile)) if wanted]
        try:
            if self.capped_out:
                spent = BudgetExhausted("the job holds no credits")
                answers: list = [{kind: spent for kind in kinds} for _ in batch]
            elif not kinds:
                answers = [{} for _ in batch]
            else:
                answers = self.jobs.data_requests.access_people(
                    self.team,
                    self.member,
                    [person_id for _, person_id in batch],
                    kinds,
                    feature=opts.feature,
                    budget=self.budget,
                    sources=self.sources,
                    executor=self.pool,
                )
        except BaseException as exc:  # noqa: BLE001 - the rows waiting on these people must wake up
            for entry, _ in batch:
                entry.future.set_exception(exc)
            return
        for (entry, person_id), answer in zip(batch, answers, strict=True):
            try:
                if isinstance(answer, TributaryError):  # e.g. the person is gone: every kind says so
                    answer = {kind: answer for kind in kinds}
                elif isinstance(answer, BaseException):
                    raise answer
                entry.future.set_result(self._outcome(person_id, answer))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the rows that wait on it
                entry.future.set_exception(exc)

    def _outcome(self, person_id: int, outcomes: dict[DataKind, AccessResult | TributaryError]) -> _PersonOutcome:
        fields: dict = {}
        errors: list[str] = []
        credits = 0
        results: list[AccessResult] = []
        undone = None
        for kind, result in outcomes.items():
            if isinstance(result, BudgetExhausted | InsufficientCredits):
                undone = NOT_ENRICHED_CREDITS if isinstance(result, InsufficientCredits) else self._exhausted_status()
                continue
            if isinstance(result, TributaryError):
                errors.append(str(result))
                continue
            results.append(result)
            credits += self._credits_of(result)
            if kind == DataKind.EMAIL:
                if result.email is not None:
                    score = result.email.score
                    if result.already_accessed and not score:
                        score = self._stored_score(result.email.address)
                    fields.update(
                        email=result.email.address,
                        email_status=result.email.status.value,
                        email_score=str(score) if score else "",
                    )
                else:
                    fields["email_status"] = "unavailable"
                if result.office_phone is not None:
                    fields["office_phone"] = result.office_phone.e164
            elif result.mobile_phones:
                fields.update(mobile_phone=result.mobile_phones[0].e164, phone_status=result.mobile_phones[0].status)
        person = results[0].person if results else None
        if person is None:
            try:
                person = resolve_person(self.engine, person_id)
            except TributaryError as exc:
                errors.append(str(exc))
        if person is not None:
            fields.update(
                title=person.title or "",
                company=person.company or "",
                domain=person.domain or "",
                linkedin_url=person.linkedin_url or "",
            )
        # Money stopped it: one plain status, and the row is left for `--resume` (errors about the
        # person itself would come back the same on the resume and be reported then).
        error = undone if undone is not None else "; ".join(errors)
        return _PersonOutcome(person_id=person_id, credits=credits, error=error, **fields)

    def _exhausted_status(self) -> str:
        """Why the job's hold could not pay: its cap is spent, or the hold was all the team had."""
        if self._exhausted is None:
            cap = self.job.options.max_credits
            spent_cap = cap is not None and self.job.spent_before_hold_credits + self._hold_amount() >= cap
            wallet = self.jobs.ledger.balance(self.team.id).available_credits
            prices = (self.team.plan.price_email_credits, self.team.plan.price_mobile_credits)
            cheapest = min((p for p in prices if p), default=1)
            self._exhausted = NOT_ENRICHED_CREDITS if not spent_cap and wallet < cheapest else NOT_ENRICHED_CAP
        return self._exhausted

    def _hold_amount(self) -> int:
        if self.job.hold_id is None:
            return 0
        return self.jobs.ledger.hold_view(self.job.hold_id).amount_credits

    def _stored_score(self, address: str) -> int:
        """A replayed request carries no score (data_request does not keep it): the shared table has it."""
        with read_transaction(self.engine) as conn:
            score = conn.execute(select(_EMAIL.c.score).where(_EMAIL.c.address == address.lower())).scalar()
        return int(score or 0)

    def _credits_of(self, result: AccessResult) -> int:
        if not result.already_accessed:
            return result.charged_credits
        if result.status != DataRequestStatus.CHARGED or self.job.runs == 1:
            return 0  # a first run never paid for anything before: a replay was paid by someone else
        # A replay in a resumed run: did an earlier run of this job pay for it and crash before
        # storing the row? With a cap, the charge was posted from the job's hold; without one, it was
        # settled for this member and front end after the job started.
        cost = self.jobs.data_requests.cost_of(
            result.request_id,
            member_id=self.member.id,
            feature=self.job.options.feature,
            settled_since=self.job.created_at,
        )
        if cost is None or not cost.credits:
            return 0
        capped = self.budget is not None and self.budget.hold_id is not None
        if capped and cost.from_hold_id != self.budget.hold_id and not self.job.had_earlier_holds:
            return 0
        paid = cost.credits
        with read_transaction(self.engine) as conn:
            earlier = conn.execute(
                select(_ROW.c.row_index)
                .where(_ROW.c.job_id == self.job.id, _ROW.c.person_id == result.person.id)
                .limit(1)
            ).scalar()
        return 0 if earlier is not None else int(paid)

    # ---- storage ---------------------------------------------------------------------------

    def _stored(self, first: int, last: int) -> dict[int, RowOutput]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_ROW).where(
                    and_(_ROW.c.job_id == self.job.id, _ROW.c.row_index >= first, _ROW.c.row_index <= last)
                )
            ).all()
        return {r.row_index: RowOutput.from_stored(r.row_index, r.person_id, r.credits_charged, r.output) for r in rows}

    def _flush(self, counters: _Counters, *, final: bool = False) -> None:
        rows = self.buffer
        self.buffer = []
        now = utcnow()
        progress = counters.snapshot()
        cancelled = self.cancelled

        def op(conn: Connection) -> bool:
            job = conn.execute(select(_JOB).where(_JOB.c.id == self.job.id).with_for_update()).one()
            if rows:
                STORE_ROWS.run(
                    conn,
                    [
                        dict(
                            job_id=self.job.id,
                            row_index=r.index,
                            person_id=r.person_id,
                            credits_charged=r.credits_charged,
                            output=r.stored(),
                            created_at=now,
                        )
                        for r in rows
                    ],
                )
            values: dict = dict(
                done_rows=progress.done_rows,
                matched_rows=progress.matched_rows,
                found_rows=progress.found_rows,
                error_rows=progress.error_rows,
                charged_credits=progress.charged_credits,
                updated_at=now,
            )
            if final and job.status == JobStatus.RUNNING.value:
                # Every run ends by releasing its hold; rows left undone keep the job resumable.
                self.jobs._release_hold(conn, job.team_id, job.hold_id, f"enrich-job:{job.id}:finish:{job.runs}", now)
                if self.undone_rows:
                    values.update(status=JobStatus.INCOMPLETE.value)
                else:
                    values.update(status=JobStatus.DONE.value, finished_at=now)
            conn.execute(update(_JOB).where(_JOB.c.id == self.job.id).values(**values))
            return cancelled or job.cancel_requested

        self.cancelled = run_write(self.engine, op)
        if len(self.people) > self.jobs.person_cache_size:
            # Oldest finished lookups first (their rows are stored now); see PERSON_CACHE_SIZE.
            with self.lock:
                while len(self.people) > self.jobs.person_cache_size // 2:
                    person_id, entry = next(iter(self.people.items()))
                    if not entry.done():
                        break
                    del self.people[person_id]


def _replace_credits(out: RowOutput, credits: int) -> RowOutput:
    return replace(out, credits_charged=credits)


def _chunks(rows: Iterator[RowInput], size: int) -> Iterator[list[RowInput]]:
    while chunk := list(islice(rows, size)):
        yield chunk
