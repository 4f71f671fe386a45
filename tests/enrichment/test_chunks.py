"""Jobs on the engine, in one test process: chunks run by a real huey consumer (SQLite queue and
Redis queue) over SQLite and PostgreSQL. The multi-process proofs are in test_workers_multiprocess.py."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.enrichment.chunks import decode_row, encode_row
from core.enrichment.csv_enrich import CsvEnrichRequest
from core.enrichment.csv_workers import CsvOnWorkers
from core.enrichment.rows import RowInput
from core.jobs.tasks import Jobs
from core.normalize.contact import ContactQuery
from core.services import Services
from core.settings import Settings
from storage.timeutil import utcnow
from tests.enrichment import world as w
from tests.enrichment.test_jobs import _cost, _read, _spent, _team
from tests.mailpeers.fixtures import running_jobs  # noqa: F401

REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")
WAIT_S = float(os.environ.get("TRIBUTARY_TEST_WAIT_S", "120"))  # a bound on waiting for state, not a timing assertion


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def queue(request) -> str | None:
    if request.param == "redis-queue":
        if not REDIS_URL:
            pytest.skip("Redis not configured: set TRIBUTARY_TEST_REDIS_URL")
        return REDIS_URL
    return None


def make_jobs(engine, db_url: str, tmp_path: Path, redis_url: str | None, **overrides) -> Jobs:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        redis_url=redis_url,
        huey_sqlite_path=str(tmp_path / "huey.db"),
        huey_name=f"tributary-test-{uuid.uuid4().hex[:12]}",
        enrich_workers=4,
        **{"enrich_chunk_rows": 3, "enrich_chunk_lease_s": 5.0, **overrides},
    )
    return Jobs(Services(settings=settings, engine=engine))


@pytest.fixture
def jobs(engine, db_url, tmp_path, queue):
    jobs = make_jobs(engine, db_url, tmp_path, queue)
    yield jobs
    jobs.huey.storage.flush_all()


@pytest.fixture
def world(engine):
    people = w.people(12)
    w.seed(engine, people)
    return people


def on_workers(jobs: Jobs) -> CsvOnWorkers:
    return CsvOnWorkers(jobs.services.csv_enrichment, jobs.enrichment.engine)


def wait_for(predicate, what: str) -> None:
    done = threading.Event()
    for _ in range(int(WAIT_S / 0.05)):
        if predicate():
            return
        done.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def request(tmp_path: Path, inp: Path, team: str, name: str, **kw) -> CsvEnrichRequest:
    defaults = dict(want_email=True, want_mobile=True)
    defaults.update(kw)
    return CsvEnrichRequest(inp, tmp_path / name, team, f"rep@{team}.example", **defaults)


def test_a_job_on_workers_writes_what_an_in_process_run_writes_and_pays_once(
    jobs, world, tmp_path, running_jobs  # noqa: F811
) -> None:
    svc = jobs.services
    accounts = svc.accounts
    rows = [w.row(p) for p in world] + [w.row(p) for p in reversed(world)] + [w.row(world[5])]
    rows.insert(4, ["Jane", "Doe", "", "", "", "no identifier"])
    rows.append(["Nobody", "Atall", "Initech", "", "", ""])
    inp = w.write_csv(tmp_path / "in.csv", rows)

    local_team, worker_team = _team(accounts), _team(accounts)
    csv = svc.csv_enrichment
    local = request(tmp_path, inp, local_team, "local.csv", max_credits=1000)
    plan = csv.plan(local)
    job, _ = csv.start_or_resume(local, plan)
    csv.run(local, plan, job)

    remote = request(tmp_path, inp, worker_team, "remote.csv", max_credits=1000)
    submitted = on_workers(jobs).submit(remote, csv.plan(remote))
    running_jobs(jobs, workers=3)
    wait_for(lambda: on_workers(jobs).status(submitted.id).finished, "the job to finish")
    on_workers(jobs).download(submitted.id, tmp_path / "remote.csv")

    assert _read(tmp_path / "remote.csv") == _read(tmp_path / "local.csv")
    credits = sum(int(r[-3]) for r in _read(tmp_path / "remote.csv")[1:])
    assert credits == _spent(accounts, worker_team) == _cost(world)
    info = svc.enrichment_jobs.job(submitted.id)
    assert info.status.value == "done" and info.progress.done_rows == len(rows)
    assert info.progress.charged_credits == credits
    assert svc.ledger.balance(accounts.team(worker_team).id).held_credits == 0  # the cap's hold released


def test_a_cap_on_workers_is_never_exceeded_and_rows_say_what_the_ledger_took(
    jobs, world, tmp_path, running_jobs  # noqa: F811
) -> None:
    svc = jobs.services
    team = _team(svc.accounts)
    rows = [w.row(p) for p in world] * 2
    inp = w.write_csv(tmp_path / "in.csv", rows)
    req = request(tmp_path, inp, team, "out.csv", max_credits=20)
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    running_jobs(jobs, workers=3)
    wait_for(lambda: on_workers(jobs).status(job.id).finished, "the job to finish")
    on_workers(jobs).download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    credits = sum(int(r[-3]) for r in out[1:])
    assert credits == _spent(svc.accounts, team) <= 20
    assert len(out) == len(rows) + 1


def test_a_small_teams_job_finishes_while_a_large_one_is_still_running(
    engine, db_url, world, tmp_path, queue, running_jobs  # noqa: F811
) -> None:
    jobs = make_jobs(engine, db_url, tmp_path, queue, enrich_chunk_rows=2, enrich_team_chunks=1)
    try:
        svc = jobs.services
        big_team, small_team = _team(svc.accounts), _team(svc.accounts)
        big = w.write_csv(tmp_path / "big.csv", [w.row(p) for p in world] * 20)  # 120 chunks
        small = w.write_csv(tmp_path / "small.csv", [w.row(p) for p in world[:3]])  # 2 chunks
        big_req = request(tmp_path, big, big_team, "big-out.csv", want_mobile=False)
        big_job = on_workers(jobs).submit(big_req, svc.csv_enrichment.plan(big_req))
        running_jobs(jobs, workers=1)  # one worker thread: the queue order is the whole story
        wait_for(lambda: on_workers(jobs).status(big_job.id).chunks.done >= 2, "the big job to start")
        small_req = request(tmp_path, small, small_team, "small-out.csv", want_mobile=False)
        small_job = on_workers(jobs).submit(small_req, svc.csv_enrichment.plan(small_req))
        wait_for(lambda: on_workers(jobs).status(small_job.id).finished, "the small job to finish")
        big_status = on_workers(jobs).status(big_job.id)
        assert not big_status.finished and big_status.chunks.pending > 0
        svc.enrichment_jobs.cancel(big_job.id)
        wait_for(lambda: on_workers(jobs).status(big_job.id).finished, "the big job to settle")
    finally:
        jobs.huey.storage.flush_all()


def test_cancel_reaches_every_chunk_and_rows_still_say_what_the_ledger_took(
    jobs, world, tmp_path, running_jobs  # noqa: F811
) -> None:
    svc = jobs.services
    team = _team(svc.accounts)
    rows = [w.row(p) for p in world] * 10
    inp = w.write_csv(tmp_path / "in.csv", rows)
    req = request(tmp_path, inp, team, "out.csv", max_credits=500)
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    running_jobs(jobs, workers=2)
    wait_for(lambda: on_workers(jobs).status(job.id).chunks.done >= 1, "a chunk to be written")
    svc.enrichment_jobs.cancel(job.id)
    wait_for(lambda: on_workers(jobs).status(job.id).finished, "the cancelled job to settle")
    on_workers(jobs).download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    assert len(out) == len(rows) + 1
    credits = sum(int(r[-3]) for r in out[1:])
    assert credits == _spent(svc.accounts, team)
    assert svc.enrichment_jobs.job(job.id).status.value == "cancelled"
    assert svc.ledger.balance(svc.accounts.team(team).id).held_credits == 0


class _Died(Exception):
    """The worker process dies here (after its lookups were charged, before anything was written)."""


def test_a_chunk_redone_after_its_worker_died_having_paid_reports_the_credits_once(
    engine, db_url, world, tmp_path
) -> None:
    from sqlalchemy import update

    from core.enrichment.chunks import ChunkEngine
    from storage.models import EnrichmentChunk, EnrichmentClaim
    from storage.timeutil import utcnow

    jobs = make_jobs(engine, db_url, tmp_path, None, enrich_chunk_rows=4)
    svc = jobs.services
    team = _team(svc.accounts)
    rows = [w.row(p) for p in world[:8]] + [w.row(p) for p in world[:4]]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    queued: list[tuple[int, int]] = []

    class DyingEngine(ChunkEngine):
        """Dies before storing anything: no outcome saved, no release (a dead process does neither)."""

        def save_outcomes(self, lease, outcomes) -> None:
            pass

        def store(self, lease, outputs) -> None:
            raise _Died()

        def _release(self, lease) -> None:
            pass

    dying = DyingEngine(svc.enrichment_jobs, chunk_rows=4, lease_s=60)
    alive = ChunkEngine(svc.enrichment_jobs, chunk_rows=4, lease_s=60)
    for e in (dying, alive):
        e.enqueue = lambda chunk_id, attempt: queued.append((chunk_id, attempt))
    req = request(tmp_path, inp, team, "out.csv", max_credits=1000)
    job = CsvOnWorkers(svc.csv_enrichment, alive).submit(req, svc.csv_enrichment.plan(req))
    first = queued.pop(0)
    with pytest.raises(_Died):
        dying.run_chunk(*first)
    paid = _spent(svc.accounts, team)
    assert paid > 0  # the dead attempt's lookups were charged
    # Its lease runs out (moved into the past rather than waited for).
    past = utcnow().replace(year=2000)
    with engine.begin() as conn:
        conn.execute(update(EnrichmentChunk.__table__).where(EnrichmentChunk.__table__.c.id == first[0])
                     .values(lease_until=past))
        conn.execute(update(EnrichmentClaim.__table__).values(lease_until=past))
    alive.pump()  # the dead worker's chunk goes back to the queue
    assert first[0] in [chunk_id for chunk_id, _ in queued]
    while queued:
        alive.run_chunk(*queued.pop(0))
        alive.pump()
    assert CsvOnWorkers(svc.csv_enrichment, alive).status(job.id).finished
    CsvOnWorkers(svc.csv_enrichment, alive).download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    credits = [int(r[-3]) for r in out[1:]]
    assert sum(credits) == _spent(svc.accounts, team) == paid + _cost(world[4:8])  # nothing charged twice
    assert credits[8:] == [0, 0, 0, 0] and sum(credits[:4]) == _cost(world[:4])  # first rows in input order


def test_two_chunks_claiming_shared_people_in_opposite_orders_wait_for_each_other_and_never_deadlock(
    engine, db_url, world, tmp_path
) -> None:
    """PostgreSQL, staged: chunk 1's transaction has claimed person 1 and not committed. Chunk 2 claims
    persons 2 and 1 (in that order in its rows) and waits for person 1, before it holds person 2 (claims
    are inserted in person order); so chunk 1 then claims person 2 without waiting. In row order chunk 2
    would hold person 2 while waiting: a deadlock PostgreSQL finds only after deadlock_timeout (1 s,
    every job whose first two chunks share people, e.g. duplicate rows) — here chunk 1's lock_timeout
    of 50 ms fails the test first."""
    import time

    from sqlalchemy import text

    from core.enrichment.chunks import ChunkEngine, _claim_insert, _Lease

    if engine.dialect.name != "postgresql":
        pytest.skip("row locks held by another transaction: PostgreSQL only (SQLite has one writer)")
    svc = make_jobs(engine, db_url, tmp_path, None, enrich_chunk_rows=4).services
    chunks = ChunkEngine(svc.enrichment_jobs, chunk_rows=4, lease_s=60)
    queued: list[tuple[int, int]] = []
    chunks.enqueue = lambda chunk_id, attempt: queued.append((chunk_id, attempt))
    team = _team(svc.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world[:8]])
    req = request(tmp_path, inp, team, "out.csv", max_credits=1000)
    job = CsvOnWorkers(svc.csv_enrichment, chunks).submit(req, svc.csv_enrichment.plan(req))
    (first, _), (second, _) = queued[:2]
    lease = _Lease(second, job.id, svc.accounts.team(team).id, 1, 4, 1, "test", [])
    person_1, person_2 = 9_000_001, 9_000_002
    until = utcnow().replace(year=2100)

    def claim_row(person_id: int) -> dict:
        return dict(job_id=job.id, person_id=person_id, chunk_id=first, attempt=1, lease_until=until, outcome=None)

    def chunk_2_waits() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one())

    claims: dict = {}
    chunk_2 = threading.Thread(target=lambda: claims.update(chunks.claim(lease, [person_2, person_1])), daemon=True)
    with engine.connect() as chunk_1:
        chunk_1.execute(text("SET LOCAL lock_timeout = '50ms'"))
        chunk_1.execute(_claim_insert(engine), [claim_row(person_1)])
        chunk_2.start()
        deadline = time.monotonic() + WAIT_S
        while not chunk_2_waits():
            assert time.monotonic() < deadline, "chunk 2 never waited for person 1"
            time.sleep(0.02)
        chunk_1.execute(_claim_insert(engine), [claim_row(person_2)])  # chunk 2 does not hold it
        chunk_1.commit()
    chunk_2.join(WAIT_S)
    assert not chunk_2.is_alive()
    assert {p: c.chunk_id for p, c in claims.items()} == {person_1: first, person_2: first}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(0, 11), min_size=1, max_size=24),
    chunk_rows=st.integers(1, 5),
    cap=st.one_of(st.none(), st.integers(0, 60)),
    order=st.randoms(use_true_random=False),
)
def test_chunks_in_any_order_never_exceed_the_cap_and_rows_say_what_the_ledger_took(
    engine, db_url, world, tmp_path, picks, chunk_rows, cap, order
) -> None:
    from core.enrichment.chunks import ChunkEngine

    jobs = make_jobs(engine, db_url, tmp_path, None)
    svc = jobs.services
    team = _team(svc.accounts)
    rows = [w.row(world[i]) for i in picks]
    inp = w.write_csv(tmp_path / f"in-{team}.csv", rows)
    queued: list[tuple[int, int]] = []
    chunks = ChunkEngine(svc.enrichment_jobs, chunk_rows=chunk_rows, lease_s=60, team_chunks=100)
    chunks.enqueue = lambda chunk_id, attempt: queued.append((chunk_id, attempt))
    on = CsvOnWorkers(svc.csv_enrichment, chunks)
    req = request(tmp_path, inp, team, f"out-{team}.csv", max_credits=cap)
    job = on.submit(req, svc.csv_enrichment.plan(req))
    while queued:  # the chunks run in an order hypothesis picks
        chunks.run_chunk(*queued.pop(order.randrange(len(queued))))
    assert on.status(job.id).finished
    on.download(job.id, tmp_path / f"out-{team}.csv")
    out = _read(tmp_path / f"out-{team}.csv")[1:]
    assert [r[: len(w.HEADER)] for r in out] == rows  # every row, in input order
    credits = [int(r[-3]) for r in out]
    assert sum(credits) == _spent(svc.accounts, team)
    assert cap is None or sum(credits) <= cap
    seen: set[int] = set()
    for pick, paid in zip(picks, credits, strict=True):  # a person's credits on their first row only
        assert paid == 0 or pick not in seen
        seen.add(pick)


def test_a_failing_chunk_backs_off_instead_of_spinning_then_succeeds(engine, db_url, world, tmp_path) -> None:
    from sqlalchemy import select, update

    from core.enrichment.chunks import ChunkEngine
    from storage.models import EnrichmentChunk
    from storage.timeutil import as_utc, utcnow

    _CH = EnrichmentChunk.__table__
    jobs = make_jobs(engine, db_url, tmp_path, None)
    svc = jobs.services
    team = _team(svc.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world[:3]])
    queued: list[tuple[int, int]] = []
    failures = [RuntimeError("database went away")]

    class Flaky(ChunkEngine):
        def store(self, lease, outputs) -> None:
            if failures:
                raise failures.pop()
            super().store(lease, outputs)

    chunks = Flaky(svc.enrichment_jobs, chunk_rows=10, lease_s=60)
    chunks.enqueue = lambda chunk_id, attempt: queued.append((chunk_id, attempt))
    req = request(tmp_path, inp, team, "out.csv")
    job = CsvOnWorkers(svc.csv_enrichment, chunks).submit(req, svc.csv_enrichment.plan(req))
    with pytest.raises(RuntimeError):
        chunks.run_chunk(*queued.pop())
    assert chunks.pump() == 0 and not queued  # not re-enqueued at once: no hot loop
    with engine.begin() as conn:
        until = conn.execute(select(_CH.c.lease_until).where(_CH.c.job_id == job.id)).scalar_one()
        assert as_utc(until) > utcnow()
        conn.execute(update(_CH).where(_CH.c.job_id == job.id).values(lease_until=utcnow().replace(year=2000)))
    assert chunks.pump() == 1  # the back-off over: queued again, and this time it works
    chunks.run_chunk(*queued.pop())
    assert CsvOnWorkers(svc.csv_enrichment, chunks).status(job.id).finished


def test_a_queued_task_lost_with_its_worker_is_enqueued_again_by_its_watch(engine, db_url, world, tmp_path) -> None:
    from sqlalchemy import update

    from core.enrichment.chunks import ChunkEngine
    from storage.models import EnrichmentChunk

    jobs = make_jobs(engine, db_url, tmp_path, None)
    svc = jobs.services
    team = _team(svc.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world[:3]])
    queued: list[tuple[int, int]] = []
    watches: list[tuple[int, int]] = []
    chunks = ChunkEngine(svc.enrichment_jobs, chunk_rows=10, lease_s=60)
    chunks.enqueue = lambda chunk_id, attempt: queued.append((chunk_id, attempt))
    chunks.watch = lambda chunk_id, attempt, at: watches.append((chunk_id, attempt))
    req = request(tmp_path, inp, team, "out.csv")
    job = CsvOnWorkers(svc.csv_enrichment, chunks).submit(req, svc.csv_enrichment.plan(req))
    lost = queued.pop()  # a worker took the task and died before it started: the message is gone
    assert watches == [lost]
    chunks.check(*lost)  # the watch fires early: the queue lease still runs, nothing happens
    assert not queued
    with engine.begin() as conn:
        conn.execute(update(EnrichmentChunk.__table__).values(lease_until=utcnow().replace(year=2000)))
    chunks.check(*lost)
    assert queued == [(lost[0], lost[1] + 1)]
    assert chunks.run_chunk(*lost) == "stale"  # the lost task, if it ever turned up, does nothing
    assert chunks.run_chunk(*queued.pop()) == "done"
    assert CsvOnWorkers(svc.csv_enrichment, chunks).status(job.id).finished


def test_an_incomplete_job_on_workers_resumed_with_more_credits_writes_what_one_uncapped_process_writes(
    jobs, world, tmp_path, running_jobs  # noqa: F811
) -> None:
    """A binding cap starves whichever people the lookups reach last (order-dependent, in-process
    too); once resumed with the credits added, the output is the one of a run the cap never bound."""
    svc = jobs.services
    accounts = svc.accounts
    rows = [w.row(p) for p in world] * 3 + [["Nobody", "Atall", "Initech", "", "", ""]]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    local_team, team = _team(accounts), _team(accounts)
    local = request(tmp_path, inp, local_team, "local.csv")
    plan = svc.csv_enrichment.plan(local)
    svc.csv_enrichment.run(local, plan, svc.csv_enrichment.start_or_resume(local, plan)[0])

    cap = _cost(world) // 2
    req = request(tmp_path, inp, team, "out.csv", max_credits=cap)
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    running_jobs(jobs, workers=3)
    wait_for(lambda: on_workers(jobs).status(job.id).finished, "the capped job to stop")
    assert svc.enrichment_jobs.job(job.id).status.value == "incomplete"
    on_workers(jobs).download(job.id, tmp_path / "capped.csv")
    capped = _read(tmp_path / "capped.csv")
    assert any(r[-1] == "not enriched: spend cap reached" for r in capped[1:])
    assert sum(int(r[-3]) for r in capped[1:]) == _spent(accounts, team) <= cap

    resumed = on_workers(jobs).chunks.resume(job.id, max_credits=_cost(world))
    assert resumed.status.value == "running" and resumed.runs == 2
    wait_for(lambda: on_workers(jobs).status(job.id).finished, "the resumed job to finish")
    assert svc.enrichment_jobs.job(job.id).status.value == "done"
    on_workers(jobs).download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    assert out == _read(tmp_path / "local.csv")
    assert sum(int(r[-3]) for r in out[1:]) == _spent(accounts, team) == _spent(accounts, local_team) == _cost(world)
    assert svc.enrichment_jobs.job(job.id).progress.charged_credits == _cost(world)
    assert svc.ledger.balance(accounts.team(team).id).held_credits == 0


def test_only_an_incomplete_job_on_workers_resumes(jobs, world, tmp_path, running_jobs) -> None:  # noqa: F811
    from core.errors import InvalidInput, NotFound

    svc = jobs.services
    team = _team(svc.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world])
    req = request(tmp_path, inp, team, "out.csv")
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    with pytest.raises(InvalidInput, match="is running: only an incomplete job"):
        on_workers(jobs).chunks.resume(job.id)
    plan = svc.csv_enrichment.plan(request(tmp_path, inp, team, "local.csv"))
    local, _ = svc.csv_enrichment.start_or_resume(request(tmp_path, inp, team, "local.csv"), plan)
    with pytest.raises(NotFound, match="not handed to the workers"):
        on_workers(jobs).chunks.resume(local.id)


def _shared_people(engine, last_name: str) -> int:
    from sqlalchemy import func, select

    from storage.db import read_transaction
    from storage.models import Person

    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).where(Person.__table__.c.last_name == last_name)).scalar_one()


def _candidates(engine, team_id: int) -> list[str]:
    from sqlalchemy import select

    from storage.db import read_transaction
    from storage.models import ContactCandidate

    with read_transaction(engine) as conn:
        return list(conn.execute(select(ContactCandidate.email).where(ContactCandidate.team_id == team_id)).scalars())


def _contacts(engine, team_id: int) -> int:
    from sqlalchemy import func, select

    from storage.db import read_transaction
    from storage.models import TeamContact

    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).where(TeamContact.__table__.c.team_id == team_id)).scalar_one()


@pytest.mark.parametrize("opted_out", [False, True])
def test_a_job_on_workers_contributes_its_unmatched_rows_as_an_in_process_run_does(
    jobs, world, tmp_path, running_jobs, opted_out  # noqa: F811
) -> None:
    """Two independent teams supplying the same unknown person's business email make a shared
    person, whether their uploads ran in-process or on workers; an opted-out team's upload stays a
    private candidate and corroborates nothing (core/contributions.py's rules, unchanged)."""
    svc = jobs.services
    accounts = svc.accounts
    unknown = ["Quinn", "Workerson", "Hooli", "https://hooli.example", "quinn.workerson@hooli.example", ""]
    rows = [w.row(p) for p in world[:4]] + [unknown]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    local_team, team = _team(accounts), _team(accounts)
    if opted_out:
        accounts.set_contribute(team, False)
    local = request(tmp_path, inp, local_team, "local.csv")
    plan = svc.csv_enrichment.plan(local)
    svc.csv_enrichment.run(local, plan, svc.csv_enrichment.start_or_resume(local, plan)[0])
    assert _shared_people(svc.engine, "Workerson") == 0  # one contributor: private to it

    req = request(tmp_path, inp, team, "out.csv")
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    running_jobs(jobs, workers=2)
    wait_for(lambda: on_workers(jobs).status(job.id).finished, "the job to finish")
    team_id = accounts.team(team).id
    assert _shared_people(svc.engine, "Workerson") == (0 if opted_out else 1)
    assert _candidates(svc.engine, team_id) == (["quinn.workerson@hooli.example"] if opted_out else [])
    assert _contacts(svc.engine, team_id) == _contacts(svc.engine, accounts.team(local_team).id) == 4


def test_a_running_jobs_cap_hold_is_renewed_before_it_can_time_out(engine, db_url, world, tmp_path) -> None:
    from datetime import timedelta

    from storage.models.enums import HoldStatus

    jobs = make_jobs(engine, db_url, tmp_path, None, enrich_hold_timeout_s=600)
    svc = jobs.services
    chunks = jobs.enrichment.engine
    team = _team(svc.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world])
    req = request(tmp_path, inp, team, "out.csv", max_credits=100)
    job = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))  # no worker: the job stays running
    taken = svc.ledger.hold_view(job.hold_id).expires_at - timedelta(seconds=600)
    assert chunks.renew_holds(now=taken + timedelta(seconds=200)) == 0  # more than half its time left
    assert chunks.renew_holds(now=taken + timedelta(seconds=400)) == 1
    assert svc.ledger.hold_view(job.hold_id).expires_at == taken + timedelta(seconds=1000)
    team_id = svc.accounts.team(team).id
    svc.ledger.sweep(team_id, now=taken + timedelta(seconds=700))  # past the first timeout: still held
    assert svc.ledger.hold_view(job.hold_id).status == HoldStatus.PENDING
    assert svc.ledger.balance(team_id, now=taken + timedelta(seconds=700)).held_credits == 100
    # A hold already timed out is not revived (its credits may be spent elsewhere by then).
    late = taken + timedelta(seconds=1001)
    assert chunks.renew_holds(now=late) == 0
    assert svc.ledger.hold_view(job.hold_id).expires_at == taken + timedelta(seconds=1000)
    svc.ledger.sweep(team_id, now=late)
    assert svc.ledger.hold_view(job.hold_id).status == HoldStatus.EXPIRED
    assert svc.ledger.balance(team_id, now=late).held_credits == 0
    # A job no longer running keeps no hold alive.
    other = on_workers(jobs).submit(req, svc.csv_enrichment.plan(req))
    svc.enrichment_jobs.cancel(other.id)
    assert chunks.renew_holds(now=utcnow() + timedelta(seconds=400)) == 0


_FIELD = st.one_of(st.none(), st.text(max_size=6))


@settings(max_examples=200, deadline=None)
@given(
    query=st.builds(ContactQuery, **{f.name: _FIELD for f in fields(ContactQuery)}),
    cells=st.lists(st.text(max_size=4), max_size=4),
    problem=st.one_of(st.none(), st.text(max_size=6)),
)
def test_a_stored_row_reads_back_as_it_was_given(query, cells, problem) -> None:
    """A chunk's rows are stored as JSON (cells, the query's non-empty fields, the problem) and read
    back by the worker: nothing lost, nothing added."""
    stored = json.loads(json.dumps(encode_row(cells, RowInput(7, query, problem))))
    assert stored[0] == cells and None not in stored[1].values()
    assert decode_row(7, stored) == RowInput(7, query, problem)


def test_after_chunk_hooks_see_every_stored_chunk_and_a_failing_hook_fails_nothing(
    jobs, world, tmp_path, running_jobs  # noqa: F811
) -> None:
    """The engine calls its after-chunk hooks (the Sheets add-on's write wake-up) once per stored
    chunk with the job's id; a hook that raises is logged, and the job finishes as it would have."""
    seen: list[int] = []

    def failing(job_id: int) -> None:
        raise RuntimeError("a hook's own failure")

    jobs.enrichment.engine.after_chunk.extend([failing, seen.append])
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world])
    team = _team(jobs.services.accounts)
    req = request(tmp_path, inp, team, "out.csv", max_credits=1000)
    submitted = on_workers(jobs).submit(req, jobs.services.csv_enrichment.plan(req))
    running_jobs(jobs, workers=2)
    wait_for(lambda: on_workers(jobs).status(submitted.id).finished, "the job to finish")
    chunks = jobs.enrichment.engine.state(submitted.id)
    wait_for(lambda: len(seen) >= chunks.done, "the last chunk's hooks (called after its commit)")
    assert chunks.done == len(world) // 3 and seen == [submitted.id] * chunks.done
    assert jobs.services.enrichment_jobs.job(submitted.id).status.value == "done"
    assert _spent(jobs.services.accounts, team) == _cost(world)
