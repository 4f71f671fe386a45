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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import Connection, delete, func, insert, select, update

from core import metrics
from core.data_requests import AccessResult
from core.enrichment.jobs import (
    CANCELLED_ERROR,
    EnrichmentJobs,
    JobInfo,
    _insert_ignore,
    _JobRun,
    _Pending,
    _PersonEntry,
    _PersonOutcome,
)
from core.enrichment.rows import RowInput, RowOutput
from core.errors import InvalidInput, NotFound
from core.normalize.contact import ContactQuery
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import (
    EnrichmentChunk,
    EnrichmentClaim,
    EnrichmentJob,
    EnrichmentJobInput,
    EnrichmentRow,
)
from storage.models.enrichment import JobStatus
from storage.models.enums import DataRequestStatus
from storage.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_JOB = EnrichmentJob.__table__
_ROW = EnrichmentRow.__table__
_IN = EnrichmentJobInput.__table__
_CH = EnrichmentChunk.__table__
_CL = EnrichmentClaim.__table__

CHUNK_ROWS = 500
DEFAULT_LEASE_S = 60
TEAM_CHUNKS_IN_QUEUE = 2
QUEUE_LEASE_FACTOR = 10  # a queued chunk not taken within this many leases is re-enqueued
MAX_BACK_OFF_S = 3600  # the longest a failing chunk waits before its next attempt
POLL_S = 0.05  # how often a chunk waiting on another chunk's person reads the claims
SUBMIT_CHUNKS_PER_TX = 20
PUMP_LOCK_KEY = 0x74726962  # PostgreSQL advisory lock: one pump at a time (SQLite: BEGIN IMMEDIATE)

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


def encode_row(cells: list[str], row: RowInput) -> list:
    query = {k: v for k, v in asdict(row.query).items() if v is not None}
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
        self.watch: Callable[[int, int, datetime], None] | None = None

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

    # ---- running one chunk -------------------------------------------------------------------

    def run_chunk(self, chunk_id: int, attempt: int) -> str:
        """Run one chunk if this task is its current attempt. Returns what happened."""
        lease = self._take(chunk_id, attempt, worker_id())
        if lease is None:
            return "stale"
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
        self.pump(lease.team_id)
        return result

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
        insert_row = _insert_ignore(self.engine)
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
                conn.execute(
                    insert_row,
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
                    error_rows=_JOB.c.error_rows + sum(bool(o.error) for o in outputs),
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
                .where(_CL.c.job_id == lease.job_id, _CL.c.person_id.in_(credited), _CL.c.chunk_id == lease.chunk_id)
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
        paid = conn.execute(
            select(_ROW.c.person_id, func.min(_ROW.c.row_index), func.sum(_ROW.c.credits_charged))
            .where(_ROW.c.job_id == job.id, _ROW.c.person_id.is_not(None))
            .group_by(_ROW.c.person_id)
            .having(func.sum(_ROW.c.credits_charged) > 0)
        ).all()
        for person_id, first, total in paid:
            conn.execute(
                update(_ROW)
                .where(_ROW.c.job_id == job.id, _ROW.c.person_id == person_id, _ROW.c.row_index != first)
                .values(credits_charged=0)
            )
            conn.execute(
                update(_ROW)
                .where(_ROW.c.job_id == job.id, _ROW.c.row_index == first)
                .values(credits_charged=int(total))
            )
        conn.execute(delete(_CL).where(_CL.c.job_id == job.id))
        values: dict = {"updated_at": now}
        if job.status == JobStatus.RUNNING.value:
            self.jobs._release_hold(conn, job.team_id, job.hold_id, f"enrich-job:{job.id}:finish", now)
            values.update(status=JobStatus.DONE.value, finished_at=now)
        conn.execute(update(_JOB).where(_JOB.c.id == job.id).values(**values))
        metrics.JOBS_FINISHED.inc()
        log.info("job finished", extra={"job_id": job.id})

    # ---- claims ------------------------------------------------------------------------------

    def claim(self, lease: _Lease, person_ids: list[int]) -> dict[int, object]:
        """Claim these people for this chunk; returns each person's claim row."""
        if not person_ids:
            return {}
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
            for row in conn.execute(select(_CL).where(_CL.c.job_id == job_id, _CL.c.person_id.in_(part))):
                out[row.person_id] = row
        return out

    def claims(self, job_id: int, person_ids: list[int]) -> dict[int, object]:
        with read_transaction(self.engine) as conn:
            return self._claims(conn, job_id, person_ids)

    def take_over(self, lease: _Lease, person_ids: list[int]) -> list[int]:
        """Claims of dead chunks (lease over, no outcome) become this chunk's."""
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
        if not outcomes:
            return

        def op(conn: Connection) -> None:
            for person_id, outcome in outcomes.items():
                conn.execute(
                    update(_CL)
                    .where(
                        _CL.c.job_id == lease.job_id, _CL.c.person_id == person_id,
                        _CL.c.chunk_id == lease.chunk_id, _CL.c.outcome.is_(None),
                    )
                    .values(outcome=asdict(outcome))
                )

        run_write(self.engine, op)

    def owns_claims(self, lease: _Lease) -> bool:
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(_CL.c.person_id).where(_CL.c.job_id == lease.job_id, _CL.c.chunk_id == lease.chunk_id).limit(1)
            ).first() is not None

    def cancel_requested(self, job_id: int) -> bool:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_JOB.c.cancel_requested, _JOB.c.status).where(_JOB.c.id == job_id)).one()
        return bool(row.cancel_requested) or row.status != JobStatus.RUNNING.value


def _claim_insert(engine):
    if is_sqlite(engine):
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    return dialect_insert(_CL).on_conflict_do_nothing(index_elements=["job_id", "person_id"])


_OUTCOME_FIELDS = {f.name for f in fields(_PersonOutcome)}


def _outcome_from(stored: dict) -> _PersonOutcome:
    return _PersonOutcome(**{k: v for k, v in stored.items() if k in _OUTCOME_FIELDS})


class _ChunkRun(_JobRun):
    """One attempt at one chunk: the in-process run's matching and lookups, with the job's dedupe
    done through the claims table instead of the run's memory."""

    def __init__(self, engine: ChunkEngine, lease: _Lease) -> None:
        self.chunks = engine
        self.lease = lease
        job = engine.jobs.job(lease.job_id)
        super().__init__(engine.jobs, job)
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
                if claim.attempt != self.lease.attempt:
                    self.recheck.add(person_id)
            else:
                others.append(person_id)
        self.other_ids = set(others)
        self._resolve(entries, mine, others)
        if DRAINING.is_set() and not self.cancelled:
            raise _Drained()
        outputs = [self._output(item) for item in items]
        self.chunks.store(self.lease, outputs)
        return "cancelled" if self.cancelled else "done"

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
        saved: set[int] = set()
        waiting = set(others)
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
            self._save(entries, saved)
            self._beat()
            self.cancelled = self.cancelled or self.chunks.cancel_requested(self.job.id)
            if waiting and not stopping and not running:
                queue = self._poll_others(entries, waiting)
                if not queue and waiting:
                    threading.Event().wait(POLL_S)
            if not running and not queue and (not waiting or stopping):
                self._save(entries, saved)
                return

    def _save(self, entries: dict[int, _PersonEntry], saved: set[int]) -> None:
        done: dict[int, _PersonOutcome] = {}
        for person_id, entry in entries.items():
            if person_id in saved or entry.future is None or not entry.future.done() or entry.future.cancelled():
                continue
            if entry.future.exception() is None:
                done[person_id] = entry.future.result()
            saved.add(person_id)
        self.chunks.save_outcomes(self.lease, {p: o for p, o in done.items() if p not in self.other_ids})

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
    if run.budget.hold_id is not None and cost.from_hold_id != run.budget.hold_id:
        return 0
    return int(cost.credits)


__all__ = ["DRAINING", "ChunkEngine", "ChunkState", "LeaseLost", "decode_row", "encode_row", "worker_id"]
