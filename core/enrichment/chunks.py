"""Jobs on the engine: one enrichment job shared by any number of workers on any number of machines.

A job handed to the workers (`submit`) has its input stored in the database, split into chunks of
`chunk_rows` rows; each chunk is a huey task (core/jobs/enrichment_tasks.py). The guarantees of
core/enrichment/jobs.py hold across workers:

- Spend cap: every chunk posts from the job's ONE hold (Budget(hold_id)); the ledger serialises them.
- Each person looked up once per job: a chunk claims its people in enrichment_claim (job, person);
  the first chunk to claim a person looks them up and stores the outcome there, the others wait
  for it and reuse it (0 credits). Own lookups come first, then waiting: no two chunks wait on each
  other. A claim whose chunk died (its lease ran out with no outcome) is taken over; the new owner's
  lookup replays the data request (net-new: never charged twice) and asks whether this job paid it.
- Leases: a worker owns a chunk until lease_until, renewed while it works. A chunk whose worker died
  goes back to pending when its lease runs out (a watch task scheduled at lease end, or the periodic
  pump) and is run again; rows are written with the chunk's `done` in one transaction that first
  checks the lease is still this worker's, so a chunk is written whole, once, or not at all.
- Output in input order: `download` reads the stored rows in order. Which row "paid": a chunk
  credits the first of its rows whose person it looked up; when the last chunk is written, the
  credits of each person move to their first row in input order (as an in-process run shows them).
- Cancellable: `EnrichmentJobs.cancel` sets the flag; every chunk reads it between batches of
  people, stops looking up, and writes the rows whose people are known (their credits were taken).
- Drain: a worker told to stop (SIGTERM, `DRAINING`) stops looking up at the next batch, keeps the
  outcomes it has in the claims, and releases its chunk to another worker.
- A binding cap: which people a cap lets through depends on the order lookups settle in, on workers
  as in-process (a pool of lookups in flight there too), so two runs of one file under a cap that
  binds differ in WHICH people are left undone, never in how much is spent (at most the cap, every
  credit on a row). The rule that makes the outcome identical: rows a cap (or the wallet) stops say
  so (`not enriched: spend cap reached|out of credits`) and the job ends `incomplete`; `resume`
  (more credits, or a higher cap) deletes exactly those rows and runs their chunks again from a new
  hold, everything else staying as written. Once nothing is left undone the output is the one of
  a single in-process run whose cap never bound, row for row, credits included (each person's
  credits on their first row; a person paid in the first run and finished in the resume reports
  that payment again, from the data-requests service, as the in-process resume does). Ordering
  the cap's use by input order instead would serialise the lookups of the whole job, or reserve
  each person's worst case in input order before any lookup (a matching pass over the file first,
  and a cap that buys fewer people): neither is worth a throughput or a spend the user can see.
- Cap hold: a job's hold times out like any hold (TRIBUTARY_ENRICH_HOLD_TIMEOUT_S); while a worker
  job runs, every chunk's start and the minute's pump extend a hold that has less than half its
  timeout left (`renew_holds`), so a long job keeps its cap; one nobody works on times out.
- Matching: a worker keeps each job's companies' people across the chunks it runs of that job
  (`company_cache`, for the last MAX_CACHED_JOBS jobs), as an in-process run keeps them for its run:
  both see a company's people as read at most CACHE_MAX_AGE_S ago (core/people/matching.py).
- Sharing: a chunk's unmatched rows are contributed and its matched people saved as the member's
  contacts, as an in-process CSV run does (the `on_written` hook, core/jobs/enrichment_tasks.py).

Fairness (see README "Jobs on workers"): at most `team_chunks` chunks of one team are queued or
running at a time; when one finishes, the team's next chunk is enqueued, taken round-robin over the
team's jobs (chunk 0 of each job, then chunk 1, ...). A team's ten-row job therefore waits behind at
most `team_chunks` chunks of each other team, never behind a million-row job's whole input.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select, update

from core import metrics
from core.data_requests import AccessResult
from core.enrichment.jobs import (
    CANCELLED_ERROR,
    STORE_ROWS,
    EnrichmentJobs,
    JobInfo,
    _JobRun,
    _Pending,
    _PersonEntry,
    _PersonOutcome,
)
from core.enrichment.rows import UNDONE_ERRORS, RowInput, RowOutput
from core.errors import InvalidInput, NotFound
from core.ledger import HoldNotPending
from core.normalize.contact import ContactQuery
from core.people.matching import CompanyCache
from storage.bulk_rows import BulkUpdate
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import (
    EnrichmentChunk,
    EnrichmentClaim,
    EnrichmentJob,
    EnrichmentJobInput,
    EnrichmentRow,
    LedgerHold,
)
from storage.models.enrichment import JobStatus
from storage.models.enums import DataRequestStatus, HoldStatus
from storage.sql_lists import one_of
from storage.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_JOB = EnrichmentJob.__table__
_ROW = EnrichmentRow.__table__
_IN = EnrichmentJobInput.__table__
_CH = EnrichmentChunk.__table__
_CL = EnrichmentClaim.__table__
_HOLD = LedgerHold.__table__

CHUNK_ROWS = 500
DEFAULT_LEASE_S = 60
TEAM_CHUNKS_IN_QUEUE = 2
QUEUE_LEASE_FACTOR = 10  # a queued chunk not taken within this many leases is re-enqueued
MAX_BACK_OFF_S = 3600  # the longest a failing chunk waits before its next attempt
POLL_S = 0.05  # how often a chunk waiting on another chunk's person reads the claims
MAX_POLL_S = 0.4  # the longest a waiting chunk goes without reading the claims
CANCEL_CHECK_S = 0.25  # how often a running chunk reads the job's cancel flag
SUBMIT_CHUNKS_PER_TX = 20
HOLD_RENEW_FRACTION = 0.5  # a cap hold with less than this part of its timeout left is extended
PUMP_LOCK_KEY = 0x74726962  # PostgreSQL advisory lock: one pump at a time (SQLite: BEGIN IMMEDIATE)
MAX_CACHED_JOBS = 4  # jobs whose companies' people a worker keeps between their chunks

PENDING, QUEUED, LEASED, DONE = "pending", "queued", "leased", "done"

# Set by the worker process when it is told to stop (SIGTERM): chunks release at their next batch.
DRAINING = threading.Event()


class LeaseLost(Exception):
    """This worker no longer owns the chunk (its lease ran out and another took it): write nothing."""


class _Drained(Exception):
    pass


@dataclass(frozen=True)
class ChunkState:
    pending: int
    queued: int
    leased: int
    done: int

    @property
    def settled(self) -> bool:
        return self.pending == self.queued == self.leased == 0


@dataclass(frozen=True)
class _Lease:
    chunk_id: int
    job_id: int
    team_id: int
    chunk_index: int
    first_row: int
    attempt: int
    owner: str
    rows: list


@dataclass(frozen=True)
class WrittenChunk:
    """What a written chunk hands on: its job, the queries of rows that matched no shared person
    (contributed as an in-process run contributes them) and the people its rows matched."""

    job: JobInfo
    unmatched: list[ContactQuery]
    person_ids: list[int]


_QUERY_FIELDS = tuple(f.name for f in fields(ContactQuery))


def encode_row(cells: list[str], row: RowInput) -> list:
    # Field by field, not dataclasses.asdict (which deep-copies): a 10,000-row submit spent ~0.3 s there.
    query = {name: value for name in _QUERY_FIELDS if (value := getattr(row.query, name)) is not None}
    return [list(cells), query, row.problem]


def decode_row(index: int, stored: list) -> RowInput:
    cells, query, problem = stored
    return RowInput(index, ContactQuery(**query), problem)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class ChunkEngine:
    """Submits jobs to the workers, runs their chunks, and enqueues chunks fairly.

    `enqueue(chunk_id, attempt)` and `watch(chunk_id, attempt, at)` are installed by the task
    registry (core/jobs/enrichment_tasks.py): core never imports the queue's wiring from here."""

    def __init__(
        self,
        jobs: EnrichmentJobs,
        *,
        chunk_rows: int = CHUNK_ROWS,
        lease_s: float = DEFAULT_LEASE_S,
        team_chunks: int = TEAM_CHUNKS_IN_QUEUE,
    ) -> None:
        if chunk_rows < 1 or lease_s <= 0 or team_chunks < 1:
            raise InvalidInput("chunk_rows, lease_s and team_chunks must be positive")
        self.jobs = jobs
        self.engine = jobs.engine
        self.chunk_rows = chunk_rows
        self.lease_s = lease_s
        self.team_chunks = team_chunks
        self.enqueue: Callable[[int, int], None] | None = None
        # Called after each chunk is written (installed by the task registry; see WrittenChunk).
        self.on_written: Callable[[WrittenChunk], None] | None = None
        self.watch: Callable[[int, int, datetime], None] | None = None
        # Called with the job id after one of its chunks is stored (done or cancelled), e.g. so that a
        # Sheets job writes its results when they are ready rather than at the sidebar's next poll.
        self.after_chunk: list[Callable[[int], None]] = []
        self._company_caches: OrderedDict[int, CompanyCache] = OrderedDict()
        self._company_caches_lock = threading.Lock()

    def company_cache(self, job_id: int) -> CompanyCache:
        """The companies' people this process has read for the job's chunks (shared by its threads)."""
        with self._company_caches_lock:
            cache = self._company_caches.pop(job_id, None) or CompanyCache()
            self._company_caches[job_id] = cache  # most recently used last
            while len(self._company_caches) > MAX_CACHED_JOBS:
                self._company_caches.popitem(last=False)
            return cache

    # ---- submitting --------------------------------------------------------------------------

    def submit(self, job: JobInfo, rows: Iterable[tuple[list[str], RowInput]], meta: dict) -> int:
        """Store the job's input as chunks, then make it runnable (its input row is written last, so a
        half-stored input is never run). Returns the number of chunks."""
        count = 0
        it = iter(rows)
        now = utcnow()
        while True:
            batch = []
            for _ in range(SUBMIT_CHUNKS_PER_TX):
                part = list(islice(it, self.chunk_rows))
                if not part:
                    break
                first = part[0][1].index
                batch.append(
                    dict(
                        job_id=job.id, team_id=job.team_id, chunk_index=count, first_row=first,
                        row_count=len(part), rows=[encode_row(c, r) for c, r in part], state=PENDING,
                        attempt=0, owner=None, lease_until=None, updated_at=now,
                    )
                )
                count += 1
            if not batch:
                break
            run_write(self.engine, lambda conn, b=batch: conn.execute(insert(_CH), b))
        run_write(
            self.engine,
            lambda conn: conn.execute(
                insert(_IN).values(job_id=job.id, chunk_rows=self.chunk_rows, meta=meta, created_at=now)
            ),
        )
        if count == 0:
            self._finish_empty(job.id)
        log.info("job submitted to workers", extra={"job_id": job.id, "chunks": count})
        self.pump(job.team_id)
        return count

    def resume(self, job_id: int, *, max_credits: int | None = None) -> JobInfo:
        """Run again the rows a spend cap or the wallet left undone (an `incomplete` job), from a new
        hold (`max_credits`: the whole job's cap, what earlier runs spent included; None keeps it).
        Their stored rows are deleted and their chunks run again; every other row stays as written
        and is not looked up again. Refused for a job that was not handed to the workers."""
        self.meta(job_id)
        job = self.jobs.job(job_id)
        if job.status != JobStatus.INCOMPLETE:
            raise InvalidInput(f"job {job_id} is {job.status}: only an incomplete job on the workers resumes")
        job = self.jobs.resume(job_id, max_credits=max_credits)
        now = utcnow()

        def op(conn: Connection) -> None:
            undone = _undone_rows(conn, job_id)
            outs = [RowOutput.from_stored(r.row_index, r.person_id, r.credits_charged, r.output) for r in undone]
            indexes = [o.index for o in outs]
            for start in range(0, len(indexes), 500):
                part = indexes[start : start + 500]
                conn.execute(delete(_ROW).where(_ROW.c.job_id == job_id, _ROW.c.row_index.in_(part)))
            # An undone row may carry credits (email paid, mobile stopped by the cap): they leave
            # charged_credits with the row, and the redone row reports them again (_ChunkRun.recheck).
            conn.execute(
                update(_JOB)
                .where(_JOB.c.id == job_id)
                .values(
                    done_rows=_JOB.c.done_rows - len(outs),
                    matched_rows=_JOB.c.matched_rows - sum(o.matched for o in outs),
                    found_rows=_JOB.c.found_rows - sum(o.found for o in outs),
                    charged_credits=_JOB.c.charged_credits - sum(o.credits_charged for o in outs),
                    finished_at=None,
                    updated_at=now,
                )
            )
            firsts = dict(conn.execute(select(_CH.c.first_row, _CH.c.id).where(_CH.c.job_id == job_id)).all())
            starts = sorted(firsts)
            redo = sorted({firsts[starts[bisect_right(starts, i) - 1]] for i in indexes})
            if redo:
                conn.execute(
                    update(_CH)
                    .where(_CH.c.id.in_(redo))
                    .values(state=PENDING, owner=None, lease_until=None, updated_at=now)
                )
            else:
                self._finalize(conn, conn.execute(select(_JOB).where(_JOB.c.id == job_id)).one(), now)

        run_write(self.engine, op)
        log.info("job resumed on workers", extra={"job_id": job_id})
        self.pump(job.team_id)
        return self.jobs.job(job_id)

    def _finish_empty(self, job_id: int) -> None:
        def op(conn: Connection) -> None:
            job = conn.execute(select(_JOB).where(_JOB.c.id == job_id).with_for_update()).one()
            self._finalize(conn, job, utcnow())

        run_write(self.engine, op)

    def meta(self, job_id: int) -> dict:
        with read_transaction(self.engine) as conn:
            meta = conn.execute(select(_IN.c.meta).where(_IN.c.job_id == job_id)).scalar()
        if meta is None:
            raise NotFound(f"enrichment job {job_id} was not handed to the workers (no stored input)")
        return meta

    def state(self, job_id: int) -> ChunkState:
        with read_transaction(self.engine) as conn:
            counts = dict(
                conn.execute(
                    select(_CH.c.state, func.count()).where(_CH.c.job_id == job_id).group_by(_CH.c.state)
                ).all()
            )
        return ChunkState(*(int(counts.get(s, 0)) for s in (PENDING, QUEUED, LEASED, DONE)))

    def outputs(self, job_id: int) -> Iterator[tuple[list[str], RowOutput]]:
        """Every input row's cells and output, in input order (rows never written: cancelled)."""
        self.meta(job_id)
        with read_transaction(self.engine) as conn:
            chunk_ids = conn.execute(
                select(_CH.c.id).where(_CH.c.job_id == job_id).order_by(_CH.c.chunk_index)
            ).scalars().all()
        for chunk_id in chunk_ids:
            with read_transaction(self.engine) as conn:
                ch = conn.execute(select(_CH.c.first_row, _CH.c.rows).where(_CH.c.id == chunk_id)).one()
                last = ch.first_row + len(ch.rows) - 1
                stored = {
                    r.row_index: RowOutput.from_stored(r.row_index, r.person_id, r.credits_charged, r.output)
                    for r in conn.execute(
                        select(_ROW).where(
                            _ROW.c.job_id == job_id, _ROW.c.row_index >= ch.first_row, _ROW.c.row_index <= last
                        )
                    )
                }
            for offset, item in enumerate(ch.rows):
                index = ch.first_row + offset
                yield item[0], stored.get(index) or RowOutput(index=index, error=CANCELLED_ERROR)

    # ---- fairness ----------------------------------------------------------------------------

    def pump(self, team_id: int | None = None) -> int:
        """Send expired chunks back to pending, and enqueue each team's next chunks up to its bound.
        Safe to call from anywhere at any time (one pump at a time). Returns chunks enqueued."""
        now = utcnow()

        def op(conn: Connection) -> list[tuple[int, int]]:
            if not is_sqlite(self.engine):
                conn.execute(select(func.pg_advisory_xact_lock(PUMP_LOCK_KEY)))
            expired = conn.execute(
                update(_CH)
                .where(_CH.c.state.in_((QUEUED, LEASED)), _CH.c.lease_until < now)
                .values(state=PENDING, owner=None, lease_until=None, updated_at=now)
            ).rowcount
            if expired:
                metrics.CHUNKS_EXPIRED.inc(expired)
            waiting = select(_CH.c.team_id).join(_IN, _IN.c.job_id == _CH.c.job_id).where(_CH.c.state == PENDING)
            if team_id is not None and not expired:
                waiting = waiting.where(_CH.c.team_id == team_id)
            teams = sorted(set(conn.execute(waiting.distinct()).scalars().all()))
            busy = dict(
                conn.execute(
                    select(_CH.c.team_id, func.count()).where(_CH.c.state.in_((QUEUED, LEASED))).group_by(_CH.c.team_id)
                ).all()
            )
            picks: list[tuple[int, int]] = []
            until = now + timedelta(seconds=self.lease_s * QUEUE_LEASE_FACTOR)
            for team in teams:
                free = self.team_chunks - int(busy.get(team, 0))
                if free <= 0:
                    continue
                rows = conn.execute(
                    select(_CH.c.id, _CH.c.attempt)
                    .join(_IN, _IN.c.job_id == _CH.c.job_id)
                    .where(_CH.c.team_id == team, _CH.c.state == PENDING)
                    .order_by(_CH.c.chunk_index, _CH.c.job_id)  # round-robin over the team's jobs
                    .limit(free)
                ).all()
                for row in rows:
                    conn.execute(
                        update(_CH)
                        .where(_CH.c.id == row.id)
                        .values(state=QUEUED, attempt=row.attempt + 1, lease_until=until, updated_at=now)
                    )
                    picks.append((row.id, row.attempt + 1))
            return picks

        picks = run_write(self.engine, op)
        if picks and self.enqueue is None:
            raise InvalidInput("no job queue installed: chunks can only run on workers (core/jobs)")
        until = now + timedelta(seconds=self.lease_s * QUEUE_LEASE_FACTOR)
        for chunk_id, attempt in picks:
            self.enqueue(chunk_id, attempt)
            if self.watch is not None:  # a task lost with its worker (taken, never started) is redone
                self.watch(chunk_id, attempt, until)
        return len(picks)

    def check(self, chunk_id: int, attempt: int) -> None:
        """The lease watch: a queued or leased chunk whose lease ran out goes back to the queue (its
        task was lost with a worker that died holding it, or its worker died running it)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(_CH.c.state, _CH.c.attempt, _CH.c.lease_until, _CH.c.team_id).where(_CH.c.id == chunk_id)
            ).one_or_none()
        if row is None or row.state not in (QUEUED, LEASED) or row.attempt != attempt:
            return
        if as_utc(row.lease_until) > utcnow():
            if self.watch is not None:
                self.watch(chunk_id, attempt, as_utc(row.lease_until))
            return
        log.warning("chunk lease expired: worker presumed dead", extra={"chunk_id": chunk_id})
        self.pump(row.team_id)

    # ---- the cap's hold ----------------------------------------------------------------------

    def renew_holds(self, job_id: int | None = None, *, now: datetime | None = None) -> int:
        """Keep the cap holds of running worker jobs alive: a hold with less than half its timeout
        left is extended by a whole timeout (core.ledger `extend`), so a job that runs longer than
        the hold timeout keeps its cap. Called at every chunk's start and by the minute's pump; a
        job nobody works on any more (no chunk starts, no pump) lets its hold time out as before.
        Returns the holds extended."""
        now = now or utcnow()
        timeout_s = self.jobs.hold_timeout_s
        due = now + timedelta(seconds=timeout_s * HOLD_RENEW_FRACTION)
        query = (
            select(_JOB.c.id, _JOB.c.team_id, _JOB.c.hold_id)
            .join(_IN, _IN.c.job_id == _JOB.c.id)
            .join(_HOLD, _HOLD.c.id == _JOB.c.hold_id)
            .where(
                _JOB.c.status == JobStatus.RUNNING.value,
                _HOLD.c.status == HoldStatus.PENDING.value,
                _HOLD.c.expires_at < due,
            )
        )
        if job_id is not None:
            query = query.where(_JOB.c.id == job_id)
        with read_transaction(self.engine) as conn:
            holds = conn.execute(query).all()
        extended = 0
        for job in holds:
            try:
                self.jobs.ledger.extend(job.team_id, job.hold_id, timeout_s=timeout_s, now=now)
                extended += 1
            except HoldNotPending:
                log.warning("cap hold timed out before it was renewed", extra={"job_id": job.id})
        return extended

    # ---- running one chunk -------------------------------------------------------------------

    def run_chunk(self, chunk_id: int, attempt: int) -> str:
        """Run one chunk if this task is its current attempt. Returns what happened."""
        lease = self._take(chunk_id, attempt, worker_id())
        if lease is None:
            return "stale"
        self.renew_holds(lease.job_id)
        extra = {"job_id": lease.job_id, "chunk_id": chunk_id, "chunk_index": lease.chunk_index}
        log.info("chunk leased", extra=extra)
        if self.watch is not None:
            self.watch(chunk_id, attempt, utcnow() + timedelta(seconds=self.lease_s))
        metrics.CHUNKS_IN_FLIGHT.inc()
        try:
            result = _ChunkRun(self, lease).execute()
        except LeaseLost:
            log.warning("chunk lease lost: nothing written", extra=extra)
            result = "lost"
        except _Drained:
            self._release(lease)
            log.info("chunk released (worker draining)", extra=extra)
            result = "released"
        except BaseException:
            log.exception("chunk failed: retried after a back-off", extra=extra)
            self._back_off(lease)
            raise
        finally:
            metrics.CHUNKS_IN_FLIGHT.dec()
        metrics.CHUNKS_FINISHED.labels(result=result).inc()
        log.info("chunk %s", result, extra=extra)
        if result in ("done", "cancelled"):
            self._after_chunk(lease.job_id, extra)
        self.pump(lease.team_id)
        return result

    def _after_chunk(self, job_id: int, extra: dict) -> None:
        for hook in self.after_chunk:
            try:
                hook(job_id)
            except Exception:  # the chunk is stored: a hook's failure is its own, not the chunk's
                log.exception("after-chunk hook failed", extra=extra)

    def _take(self, chunk_id: int, attempt: int, owner: str) -> _Lease | None:
        now = utcnow()

        def op(conn: Connection) -> _Lease | None:
            taken = conn.execute(
                update(_CH)
                .where(_CH.c.id == chunk_id, _CH.c.state == QUEUED, _CH.c.attempt == attempt)
                .values(state=LEASED, owner=owner, lease_until=now + timedelta(seconds=self.lease_s), updated_at=now)
            ).rowcount
            if not taken:
                return None
            row = conn.execute(select(_CH).where(_CH.c.id == chunk_id)).one()
            return _Lease(chunk_id, row.job_id, row.team_id, row.chunk_index, row.first_row, attempt, owner, row.rows)

        return run_write(self.engine, op)

    def _release(self, lease: _Lease) -> None:
        now = utcnow()

        def op(conn: Connection) -> None:
            owned = conn.execute(
                update(_CH)
                .where(_CH.c.id == lease.chunk_id, _CH.c.attempt == lease.attempt, _CH.c.owner == lease.owner)
                .values(state=PENDING, owner=None, lease_until=None, updated_at=now)
            ).rowcount
            if owned:  # its people with no outcome yet may be taken over at once
                conn.execute(
                    update(_CL)
                    .where(_CL.c.job_id == lease.job_id, _CL.c.chunk_id == lease.chunk_id, _CL.c.outcome.is_(None))
                    .values(lease_until=now)
                )

        run_write(self.engine, op)

    def _back_off(self, lease: _Lease) -> None:
        """A failed chunk keeps its lease a while longer (doubling with each attempt, at most
        MAX_BACK_OFF_S) so that a failure that repeats does not spin; the lease watch or the pump
        re-enqueues it then. Its people are released at once for other chunks to take over."""
        now = utcnow()
        delay = min(MAX_BACK_OFF_S, self.lease_s * 2 ** min(lease.attempt, 10))

        def op(conn: Connection) -> None:
            conn.execute(
                update(_CH)
                .where(_CH.c.id == lease.chunk_id, _CH.c.attempt == lease.attempt, _CH.c.owner == lease.owner)
                .values(lease_until=now + timedelta(seconds=delay), updated_at=now)
            )
            conn.execute(
                update(_CL)
                .where(_CL.c.job_id == lease.job_id, _CL.c.chunk_id == lease.chunk_id, _CL.c.outcome.is_(None))
                .values(lease_until=now)
            )

        run_write(self.engine, op)

    def heartbeat(self, lease: _Lease) -> None:
        now = utcnow()
        until = now + timedelta(seconds=self.lease_s)

        def op(conn: Connection) -> int:
            owned = conn.execute(
                update(_CH)
                .where(
                    _CH.c.id == lease.chunk_id, _CH.c.state == LEASED,
                    _CH.c.attempt == lease.attempt, _CH.c.owner == lease.owner,
                )
                .values(lease_until=until, updated_at=now)
            ).rowcount
            if owned:
                conn.execute(
                    update(_CL)
                    .where(_CL.c.job_id == lease.job_id, _CL.c.chunk_id == lease.chunk_id, _CL.c.outcome.is_(None))
                    .values(lease_until=until)
                )
            return owned

        if not run_write(self.engine, op):
            raise LeaseLost(lease.chunk_id)

    # ---- writing a chunk ---------------------------------------------------------------------

    def store(self, lease: _Lease, outputs: list[RowOutput]) -> None:
        """Write the chunk's rows, mark it done and count its progress, in one transaction, if this
        worker still owns it; the last chunk finishes the job."""
        now = utcnow()
        stored = [o for o in outputs if o.error != CANCELLED_ERROR]

        def op(conn: Connection) -> None:
            job = conn.execute(select(_JOB).where(_JOB.c.id == lease.job_id).with_for_update()).one()
            owned = conn.execute(
                update(_CH)
                .where(
                    _CH.c.id == lease.chunk_id, _CH.c.state == LEASED,
                    _CH.c.attempt == lease.attempt, _CH.c.owner == lease.owner,
                )
                .values(state=DONE, owner=None, lease_until=None, updated_at=now)
            ).rowcount
            if not owned:
                raise LeaseLost(lease.chunk_id)
            rows = self._only_own_credits(conn, lease, stored)
            if rows:
                STORE_ROWS.run(
                    conn,
                    [
                        dict(job_id=lease.job_id, row_index=r.index, person_id=r.person_id,
                             credits_charged=r.credits_charged, output=r.stored(), created_at=now)
                        for r in rows
                    ],
                )
            conn.execute(
                update(_JOB)
                .where(_JOB.c.id == lease.job_id)
                .values(
                    done_rows=_JOB.c.done_rows + len(outputs),
                    matched_rows=_JOB.c.matched_rows + sum(o.matched for o in outputs),
                    found_rows=_JOB.c.found_rows + sum(o.found for o in outputs),
                    error_rows=_JOB.c.error_rows + sum(bool(o.error) and not o.undone for o in outputs),
                    charged_credits=_JOB.c.charged_credits + sum(r.credits_charged for r in rows),
                    updated_at=now,
                )
            )
            left = conn.execute(
                select(func.count()).where(_CH.c.job_id == lease.job_id, _CH.c.state != DONE)
            ).scalar_one()
            if left == 0:
                self._finalize(conn, job, now)

        run_write(self.engine, op)
        metrics.ROWS_PROCESSED.inc(len(outputs))

    @staticmethod
    def _only_own_credits(conn: Connection, lease: _Lease, rows: list[RowOutput]) -> list[RowOutput]:
        """A row reports credits only if this chunk still holds its person's claim: a claim taken over
        (this worker was presumed dead) is reported by the chunk that took it. The claims are locked
        until this commit, so a takeover cannot slip in between."""
        credited = sorted({r.person_id for r in rows if r.credits_charged and r.person_id is not None})
        if not credited:
            return rows
        ours = set(
            conn.execute(
                select(_CL.c.person_id)
                .where(
                    _CL.c.job_id == lease.job_id,
                    one_of(conn, _CL.c.person_id, credited),
                    _CL.c.chunk_id == lease.chunk_id,
                )
                .with_for_update()
            ).scalars()
        )
        if ours.issuperset(credited):
            return rows
        return [
            replace(r, credits_charged=0) if r.credits_charged and r.person_id not in ours else r for r in rows
        ]

    def _finalize(self, conn: Connection, job, now: datetime) -> None:
        """Credits move to each person's first row in input order; the cap's hold is released."""
        credited = case((_ROW.c.credits_charged != 0, _ROW.c.row_index))
        paid = conn.execute(
            select(
                _ROW.c.person_id, func.min(_ROW.c.row_index), func.sum(_ROW.c.credits_charged),
                func.count(credited), func.min(credited),
            )
            .where(_ROW.c.job_id == job.id, _ROW.c.person_id.is_not(None))
            .group_by(_ROW.c.person_id)
            .having(func.sum(_ROW.c.credits_charged) > 0)
        ).all()
        # Only people whose credits are not already all on their first row move (usually none).
        moves = [
            dict(b_job=job.id, b_person=person_id, b_first=first, b_total=int(total))
            for person_id, first, total, rows_credited, first_credited in paid
            if rows_credited != 1 or first_credited != first
        ]
        if moves:
            conn.execute(_UNCREDIT_LATER_ROWS, moves)
            conn.execute(_CREDIT_FIRST_ROW, moves)
        conn.execute(delete(_CL).where(_CL.c.job_id == job.id))
        values: dict = {"updated_at": now}
        if job.status == JobStatus.RUNNING.value:
            self.jobs._release_hold(conn, job.team_id, job.hold_id, f"enrich-job:{job.id}:finish:{job.runs}", now)
            if _undone_rows(conn, job.id, limit=1):
                values.update(status=JobStatus.INCOMPLETE.value)  # `resume` finishes exactly those rows
            else:
                values.update(status=JobStatus.DONE.value, finished_at=now)
        conn.execute(update(_JOB).where(_JOB.c.id == job.id).values(**values))
        metrics.JOBS_FINISHED.inc()
        log.info("job finished", extra={"job_id": job.id})

    # ---- claims ------------------------------------------------------------------------------

    def claim(self, lease: _Lease, person_ids: list[int]) -> dict[int, object]:
        """Claim these people for this chunk; returns each person's claim row. Inserted in person order,
        as every chunk inserts them: two chunks of one job sharing people wait for each other, never
        deadlock (PostgreSQL would detect it only after deadlock_timeout, 1 s, and retry)."""
        if not person_ids:
            return {}
        person_ids = sorted(person_ids)
        now = utcnow()
        until = now + timedelta(seconds=self.lease_s)
        ins = _claim_insert(self.engine)

        def op(conn: Connection) -> dict[int, object]:
            conn.execute(
                ins,
                [
                    dict(job_id=lease.job_id, person_id=p, chunk_id=lease.chunk_id, attempt=lease.attempt,
                         lease_until=until, outcome=None)
                    for p in person_ids
                ],
            )
            return self._claims(conn, lease.job_id, person_ids)

        return run_write(self.engine, op)

    @staticmethod
    def _claims(conn: Connection, job_id: int, person_ids: list[int]) -> dict[int, object]:
        out: dict[int, object] = {}
        for start in range(0, len(person_ids), 500):
            part = person_ids[start : start + 500]
            for row in conn.execute(select(_CL).where(_CL.c.job_id == job_id, one_of(conn, _CL.c.person_id, part))):
                out[row.person_id] = row
        return out

    def claims(self, job_id: int, person_ids: list[int]) -> dict[int, object]:
        with read_transaction(self.engine) as conn:
            return self._claims(conn, job_id, person_ids)

    def take_over(self, lease: _Lease, person_ids: list[int]) -> list[int]:
        """Claims of dead chunks (lease over, no outcome) become this chunk's (locked in person order)."""
        person_ids = sorted(person_ids)
        now = utcnow()
        until = now + timedelta(seconds=self.lease_s)

        def op(conn: Connection) -> list[int]:
            taken = []
            for p in person_ids:
                n = conn.execute(
                    update(_CL)
                    .where(
                        _CL.c.job_id == lease.job_id, _CL.c.person_id == p,
                        _CL.c.outcome.is_(None), _CL.c.lease_until < now,
                    )
                    .values(chunk_id=lease.chunk_id, attempt=lease.attempt, lease_until=until)
                ).rowcount
                if n:
                    taken.append(p)
            return taken

        return run_write(self.engine, op)

    def save_outcomes(self, lease: _Lease, outcomes: dict[int, _PersonOutcome]) -> None:
        """Every outcome in one statement (see storage.bulk_rows)."""
        if not outcomes:
            return
        params = [
            dict(job_id=lease.job_id, person_id=person_id, chunk_id=lease.chunk_id, outcome=_outcome_json(outcome))
            for person_id, outcome in outcomes.items()
        ]
        run_write(self.engine, lambda conn: _SAVE_OUTCOME.run(conn, params))

    def owns_claims(self, lease: _Lease) -> bool:
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(_CL.c.person_id).where(_CL.c.job_id == lease.job_id, _CL.c.chunk_id == lease.chunk_id).limit(1)
            ).first() is not None

    def cancel_requested(self, job_id: int) -> bool:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_JOB.c.cancel_requested, _JOB.c.status).where(_JOB.c.id == job_id)).one()
        return bool(row.cancel_requested) or row.status != JobStatus.RUNNING.value


def _undone_rows(conn: Connection, job_id: int, *, limit: int | None = None) -> list:
    """The job's stored rows the spend cap or the wallet left undone (see UNDONE_ERRORS)."""
    query = select(_ROW).where(_ROW.c.job_id == job_id, _ROW.c.output["error"].as_string().in_(UNDONE_ERRORS))
    return conn.execute(query if limit is None else query.limit(limit)).all()


def _claim_insert(engine):
    if is_sqlite(engine):
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    return dialect_insert(_CL).on_conflict_do_nothing(index_elements=["job_id", "person_id"])


_OUTCOME_FIELDS = {f.name for f in fields(_PersonOutcome)}
_UNCREDIT_LATER_ROWS = (
    update(_ROW)
    .where(
        _ROW.c.job_id == bindparam("b_job"), _ROW.c.person_id == bindparam("b_person"),
        _ROW.c.row_index != bindparam("b_first"), _ROW.c.credits_charged != 0,
    )
    .values(credits_charged=0)
)
_CREDIT_FIRST_ROW = (
    update(_ROW)
    .where(_ROW.c.job_id == bindparam("b_job"), _ROW.c.row_index == bindparam("b_first"))
    .values(credits_charged=bindparam("b_total"))
)
_SAVE_OUTCOME = BulkUpdate(
    _CL, match=["job_id", "person_id", "chunk_id"], columns=["outcome"], where=[_CL.c.outcome.is_(None)]
)



def _outcome_json(outcome: _PersonOutcome) -> dict:
    """The outcome's non-empty fields (the rest are the dataclass defaults): a smaller claim row."""
    return {name: value for name in _OUTCOME_FIELDS if (value := getattr(outcome, name)) not in ("", 0)}


def _outcome_from(stored: dict) -> _PersonOutcome:
    return _PersonOutcome(**{k: v for k, v in stored.items() if k in _OUTCOME_FIELDS})


class _ChunkRun(_JobRun):
    """One attempt at one chunk: the in-process run's matching and lookups, with the job's dedupe
    done through the claims table instead of the run's memory."""

    def __init__(self, engine: ChunkEngine, lease: _Lease) -> None:
        self.chunks = engine
        self.lease = lease
        job = engine.jobs.job(lease.job_id)
        super().__init__(engine.jobs, job, companies=engine.company_cache(job.id))
        self.wanted: list[tuple[_PersonEntry, int]] = []
        self.recheck: set[int] = set()  # people whose earlier claim may have been paid by this job
        self.other_ids: set[int] = set()  # people other chunks look up (their outcomes are theirs to save)
        self.last_beat = utcnow()

    # The in-process run dispatches lookups as rows are matched; a chunk collects them first.
    def _enqueue(self, entry: _PersonEntry, person_id: int) -> None:
        self.wanted.append((entry, person_id))

    def execute(self) -> str:
        try:
            return self._execute()
        finally:
            self.close()

    def _execute(self) -> str:
        rows = [decode_row(self.lease.first_row + i, r) for i, r in enumerate(self.lease.rows)]
        if self.job.runs > 1:  # a resumed job: rows written by an earlier run stay as they are
            stored = self._stored(rows[0].index, rows[-1].index)
            rows = [r for r in rows if r.index not in stored]
        self.cancelled = self.chunks.cancel_requested(self.job.id)
        if self.cancelled and not self.chunks.owns_claims(self.lease):
            # Nothing of this chunk was looked up: every row is "not reached", no matching needed.
            self.chunks.store(self.lease, [RowOutput(index=r.index, error=CANCELLED_ERROR) for r in rows])
            return "cancelled"
        todo = [r for r in rows if r.problem is None]
        matches = iter(self._match(todo)) if todo else iter(())
        items = [
            RowOutput(index=r.index, error=r.problem) if r.problem is not None else self._submit(r, next(matches))
            for r in rows
        ]
        entries = {person_id: entry for entry, person_id in self.wanted}
        claims = self.chunks.claim(self.lease, list(entries))
        mine: list[int] = []
        others: list[int] = []
        for person_id, claim in claims.items():
            entry = entries[person_id]
            own = claim.chunk_id == self.lease.chunk_id
            if claim.outcome is not None:
                outcome = _outcome_from(claim.outcome)
                entry.future.set_result(outcome if own else replace(outcome, credits=0))
            elif own:
                mine.append(person_id)
                # An earlier attempt, or an earlier run, may have paid for this person unreported.
                if claim.attempt != self.lease.attempt or self.job.runs > 1:
                    self.recheck.add(person_id)
            else:
                others.append(person_id)
        self.other_ids = set(others)
        self._resolve(entries, mine, others)
        if DRAINING.is_set() and not self.cancelled:
            raise _Drained()
        outputs = [self._output(item) for item in items]
        self._share(rows, outputs)
        self.chunks.store(self.lease, outputs)
        return "cancelled" if self.cancelled else "done"

    def _share(self, rows: list[RowInput], outputs: list[RowOutput]) -> None:
        """The chunk's rows go where an in-process run sends them (the hook: contributions of
        unmatched rows, matched people as the member's contacts), before the chunk is written, so
        a finished job has shared everything. A chunk run again shares again: both are idempotent
        for one team (a team's second upload of a record is a duplicate, a contact is saved once)."""
        if self.chunks.on_written is None:
            return
        pairs = zip(rows, outputs, strict=True)
        unmatched = [r.query for r, o in pairs if o.person_id is None and not o.error and r.problem is None]
        people = sorted({o.person_id for o in outputs if o.person_id is not None})
        if unmatched or people:
            self.chunks.on_written(WrittenChunk(self.job, unmatched, people))

    def _output(self, item: RowOutput | _Pending) -> RowOutput:
        if not isinstance(item, _Pending):
            return item
        if not item.entry.done():
            return RowOutput(index=item.index, error=CANCELLED_ERROR)
        return self._attribute(self._row_from(item.index, item.entry, item.confidence))

    def _resolve(self, entries: dict[int, _PersonEntry], mine: list[int], others: list[int]) -> None:
        """Look up this chunk's people in batches, then wait for the others' (taking over dead ones);
        check the cancel flag, the drain flag and the lease between batches."""
        batches: list[Future] = []
        queue = list(mine)
        finished: deque[int] = deque()  # people whose lookup ended, to save (appended by the pool's threads)
        for person_id, entry in entries.items():
            if entry.future is not None:
                entry.future.add_done_callback(lambda _f, p=person_id: finished.append(p))
        waiting = set(others)
        next_cancel_check = 0.0
        poll_s = POLL_S  # waiting on other chunks' people: polled ever less often while nothing changes
        while True:
            stopping = self.cancelled or DRAINING.is_set()
            if stopping:
                queue = []  # not looked up: those rows are not reached (cancel) or left to the next attempt
                for f in batches:
                    f.cancel()
            elif queue:
                for start in range(0, len(queue), self.batch_people):
                    batch = [(entries[p], p) for p in queue[start : start + self.batch_people]]
                    batches.append(self.batch_pool.submit(self._lookup_batch, batch))
                queue = []
            running = [f for f in batches if not f.done()]
            if running:
                wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
            self._save(entries, finished)
            self._beat()
            if time.monotonic() >= next_cancel_check:  # a cancel is read a few times a second, not per batch
                self.cancelled = self.cancelled or self.chunks.cancel_requested(self.job.id)
                next_cancel_check = time.monotonic() + CANCEL_CHECK_S
            if waiting and not stopping and not running:
                before = len(waiting)
                queue = self._poll_others(entries, waiting)
                poll_s = POLL_S if queue or len(waiting) < before else min(MAX_POLL_S, 2 * poll_s)
                if not queue and waiting:
                    threading.Event().wait(poll_s)
            if not running and not queue and (not waiting or stopping):
                self._save(entries, finished)
                return

    def _save(self, entries: dict[int, _PersonEntry], finished: deque[int]) -> None:
        """Store the outcomes of this chunk's own lookups that ended since the last call."""
        done: dict[int, _PersonOutcome] = {}
        while finished:
            person_id = finished.popleft()
            future = entries[person_id].future
            if future is None or future.cancelled() or future.exception() is not None or person_id in self.other_ids:
                continue
            done[person_id] = future.result()
        self.chunks.save_outcomes(self.lease, done)

    def _poll_others(self, entries: dict[int, _PersonEntry], waiting: set[int]) -> list[int]:
        claims = self.chunks.claims(self.job.id, sorted(waiting))
        for person_id, claim in claims.items():
            if claim.outcome is not None:
                entries[person_id].future.set_result(replace(_outcome_from(claim.outcome), credits=0))
                waiting.discard(person_id)
        expired = [p for p in waiting if as_utc(claims[p].lease_until) < utcnow()]
        taken = self.chunks.take_over(self.lease, expired) if expired else []
        for person_id in taken:
            waiting.discard(person_id)
            self.other_ids.discard(person_id)
            self.recheck.add(person_id)
        return taken

    def _beat(self) -> None:
        now = utcnow()
        if (now - self.last_beat).total_seconds() >= self.chunks.lease_s / 3:
            self.chunks.heartbeat(self.lease)
            self.last_beat = now

    def _credits_of(self, result: AccessResult) -> int:
        if not result.already_accessed:
            return result.charged_credits
        if result.status != DataRequestStatus.CHARGED or result.person.id not in self.recheck:
            return 0  # paid by someone else before this job
        return _paid_by_job(self, result)


def _paid_by_job(run: _ChunkRun, result: AccessResult) -> int:
    """A replayed request of a person this job may have paid for in an attempt that died before
    storing its outcome: same member and front end, settled after the job started, from its hold
    (the data-requests service says what the request cost; the job never reads ledger rows)."""
    cost = run.jobs.data_requests.cost_of(
        result.request_id, member_id=run.member.id, feature=run.job.options.feature, settled_since=run.job.created_at
    )
    if cost is None or not cost.credits:
        return 0
    if run.budget.hold_id is not None and cost.from_hold_id != run.budget.hold_id and run.job.runs == 1:
        return 0  # a resumed job's earlier runs paid from earlier holds of the same job
    return int(cost.credits)


__all__ = [
    "DRAINING", "ChunkEngine", "ChunkState", "LeaseLost", "WrittenChunk", "decode_row", "encode_row", "worker_id",
]
