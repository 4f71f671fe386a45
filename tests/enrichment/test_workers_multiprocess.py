"""The multi-process proof on PostgreSQL + Redis: real `tributary worker` processes share one job.

- three workers, ONE 20,000-row job (2,000 people, each on 10 scattered rows) under a spend cap that
  binds at half the file's cost; one worker SIGKILLed while it holds a chunk (waited on in the
  database, not slept on): the output is complete and in input order, the ledger's drop equals the
  credits the rows report, each person is paid at most once (one ledger post per data request) and
  the cap is never exceeded. Which people a binding cap starves depends on lookup order (in-process
  too, with its thread pool), so identity with one process is proven where it is defined: the job is
  `incomplete`, and resumed with the credits added it writes exactly what one in-process run of the
  same file writes (core/enrichment/chunks.py, "A binding cap");
- the same with a cancel in the middle (and a worker killed before it): complete, in order, rows
  say what the ledger took, the cap never exceeded, nothing left held;
- a SIGTERM'd worker finishes or releases its chunk: every chunk is written whole or not at all
  (3,000 rows: the property is per chunk).

The two 20,000-row tests are marked slow. Measured 2026-12-01 on the shared 2-core machine at load
15-27: 387 s (the in-process reference run of the file, the capped run, the resume) and 103 s; the
SIGTERM test 62 s. Their bound is BIG_TIMEOUT_S.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from sqlalchemy import func, select

from core.enrichment.csv_workers import CsvOnWorkers
from core.jobs.tasks import Jobs
from core.services import Services
from core.settings import Settings
from storage.db import read_transaction
from storage.models import EnrichmentChunk, EnrichmentRow
from tests.enrichment import world as w
from tests.enrichment.test_chunks import request
from tests.enrichment.test_jobs import _posts_per_request, _read, _spent, _team

REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")
ROWS, PEOPLE, CHUNK_ROWS = 3000, 100, 150  # the SIGTERM test
BIG_ROWS, BIG_PEOPLE, BIG_CHUNK_ROWS = 20_000, 2_000, 500  # the size
WAIT_S = 300.0  # a bound on waiting for state, never a timing assertion
_CH = EnrichmentChunk.__table__
_ROW = EnrichmentRow.__table__

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="Redis not configured: set TRIBUTARY_TEST_REDIS_URL")


@pytest.fixture
def backend() -> str:
    return "postgresql"  # several processes on one database: the production set-up


@pytest.fixture
def size() -> tuple[int, int, int]:
    return ROWS, PEOPLE, CHUNK_ROWS


BIG = pytest.mark.parametrize("size", [(BIG_ROWS, BIG_PEOPLE, BIG_CHUNK_ROWS)], ids=["20000-rows"])
BIG_TIMEOUT_S = 900  # a bound for a loaded shared machine (pytest-timeout's default is 300 s)


@pytest.fixture
def env(db_url, tmp_path, size):
    chunk_rows = size[2]
    name = f"tributary-test-{uuid.uuid4().hex[:12]}"
    environ = {
        **os.environ,
        "TRIBUTARY_DATABASE_URL": db_url,
        "TRIBUTARY_DEVELOPMENT": "true",  # throwaway workers: no production keys to check
        "TRIBUTARY_REDIS_URL": REDIS_URL,
        "TRIBUTARY_HUEY_NAME": name,
        "TRIBUTARY_ENRICH_CHUNK_ROWS": str(chunk_rows),
        "TRIBUTARY_ENRICH_CHUNK_LEASE_S": "3",
        "TRIBUTARY_ENRICH_TEAM_CHUNKS": "6",
        "TRIBUTARY_ENRICH_WORKERS": "4",
        "TRIBUTARY_LOG_JSON": "true",
    }
    settings = Settings(
        _env_file=None, database_url=db_url, redis_url=REDIS_URL, huey_name=name,
        enrich_chunk_rows=chunk_rows, enrich_chunk_lease_s=3, enrich_team_chunks=6, enrich_workers=4,
    )
    yield environ, settings
    Jobs(Services.from_settings(settings)).huey.storage.flush_all()


@pytest.fixture
def workers(env, tmp_path):
    procs: list[subprocess.Popen] = []

    def start(n: int) -> list[subprocess.Popen]:
        for _ in range(n):
            log = (tmp_path / f"worker{len(procs)}.log").open("w")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "worker", "--threads", "2", "--no-periodic"],
                    env=env[0], stdout=log, stderr=subprocess.STDOUT,
                )
            )
        return procs[-n:]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def wait_for(predicate, what: str):
    tick = threading.Event()
    for _ in range(int(WAIT_S / 0.05)):
        value = predicate()
        if value:
            return value
        tick.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def leased_by(engine, job_id: int, pid: int) -> int | None:
    with read_transaction(engine) as conn:
        return conn.execute(
            select(_CH.c.id).where(_CH.c.job_id == job_id, _CH.c.state == "leased", _CH.c.owner.contains(f":{pid}:"))
        ).scalar()


@pytest.fixture
def setup(engine, env, tmp_path, size):
    n_rows, n_people, _ = size
    people = w.people(n_people, per_company=20)  # 20 people a company, as a real file's are spread
    w.seed(engine, people)
    rows = [w.row(people[(i * 7919) % n_people]) for i in range(n_rows)]  # each person n_rows/n_people times
    inp = w.write_csv(tmp_path / "in.csv", rows)
    svc = Services(settings=env[1], engine=engine)
    jobs = Jobs(svc)
    return svc, CsvOnWorkers(svc.csv_enrichment, jobs.enrichment.engine), inp, rows


def _rich_team(accounts) -> str:
    """A team that can pay for the whole 20,000-row file (the basic plan's 1,000 credits cannot)."""
    team = _team(accounts)
    accounts.ledger.grant(accounts.team(team).id, 50_000, key=f"topup:{team}", expires_at=None)
    return team


def _check_money(svc, team: str, out: list[list[str]], rows: list[list[str]], cap: int) -> int:
    """Complete, in input order, the ledger's drop = the credits the rows report <= the cap, and
    each person paid at most once (one post per data request, credits on one row per person)."""
    assert [r[: len(rows[0])] for r in out[1:]] == rows  # every input row, in input order
    credits = sum(int(r[-3]) for r in out[1:])
    assert credits == _spent(svc.accounts, team) <= cap
    assert set(_posts_per_request(svc.accounts, team).values()) <= {1}
    paying = [r[0] for r in out[1:] if int(r[-3])]
    assert len(paying) == len(set(paying))  # a person's credits are on one row
    return credits


@pytest.mark.slow
@pytest.mark.timeout(BIG_TIMEOUT_S)
@BIG
def test_three_workers_one_killed_mid_chunk_a_binding_cap_then_resumed_write_what_one_process_writes(
    setup, workers, tmp_path
) -> None:
    svc, on_workers, inp, rows = setup
    accounts = svc.accounts
    local_team, team = _rich_team(accounts), _rich_team(accounts)
    local = request(tmp_path, inp, local_team, "local.csv")
    plan = svc.csv_enrichment.plan(local)
    job, _ = svc.csv_enrichment.start_or_resume(local, plan)
    svc.csv_enrichment.run(local, plan, job)
    full = _spent(accounts, local_team)
    assert svc.enrichment_jobs.job(job.id).status.value == "done"  # nothing undone: the reference
    cap = full // 2  # binds: half the people the file would pay for are left undone

    procs = workers(3)
    remote = request(tmp_path, inp, team, "remote.csv", max_credits=cap)
    job = on_workers.submit(remote, svc.csv_enrichment.plan(remote))
    victim = procs[0]
    killed_chunk = wait_for(lambda: leased_by(svc.engine, job.id, victim.pid), "the victim to hold a chunk")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_for(lambda: on_workers.status(job.id).finished, "the capped job to stop")
    assert on_workers.status(job.id).job.status.value == "incomplete"
    on_workers.download(job.id, tmp_path / "capped.csv")
    capped = _read(tmp_path / "capped.csv")
    spent = _check_money(svc, team, capped, rows, cap)
    assert spent == on_workers.status(job.id).job.progress.charged_credits
    assert any(r[-1] == "not enriched: spend cap reached" for r in capped[1:])
    with read_transaction(svc.engine) as conn:
        attempts = conn.execute(select(_CH.c.attempt).where(_CH.c.id == killed_chunk)).scalar_one()
        stored = conn.execute(select(func.count()).where(_ROW.c.job_id == job.id)).scalar_one()
    assert attempts >= 2 and stored == len(rows)  # the dead worker's chunk was run again, once more

    on_workers.chunks.resume(job.id, max_credits=full)  # the credits added
    wait_for(lambda: on_workers.status(job.id).finished, "the resumed job to finish")
    assert on_workers.status(job.id).job.status.value == "done"
    on_workers.download(job.id, tmp_path / "remote.csv")
    out = _read(tmp_path / "remote.csv")
    assert out == _read(tmp_path / "local.csv")
    assert _check_money(svc, team, out, rows, full) == full == on_workers.status(job.id).job.progress.charged_credits
    assert svc.ledger.balance(accounts.team(team).id).held_credits == 0


@pytest.mark.slow
@pytest.mark.timeout(BIG_TIMEOUT_S)
@BIG
def test_a_cancel_in_the_middle_reaches_every_worker_and_rows_say_what_the_ledger_took(
    setup, workers, tmp_path
) -> None:
    svc, on_workers, inp, rows = setup
    team = _rich_team(svc.accounts)
    procs = workers(3)
    cap = 4_000  # binds too (the file costs 9,000)
    req = request(tmp_path, inp, team, "out.csv", max_credits=cap)
    job = on_workers.submit(req, svc.csv_enrichment.plan(req))
    wait_for(lambda: leased_by(svc.engine, job.id, procs[0].pid), "a worker to hold a chunk")
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    wait_for(lambda: on_workers.status(job.id).chunks.done >= 8, "a fifth of the chunks to be written")
    svc.enrichment_jobs.cancel(job.id)
    wait_for(lambda: on_workers.status(job.id).finished, "the cancelled job to settle")
    assert on_workers.status(job.id).job.status.value == "cancelled"
    on_workers.download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    _check_money(svc, team, out, rows, cap)
    errors = {r[-1] for r in out[1:]}
    assert "not enriched: the job was cancelled" in errors and "" in errors  # stopped in the middle
    assert svc.ledger.balance(svc.accounts.team(team).id).held_credits == 0


def test_a_sigtermed_worker_finishes_or_releases_its_chunk_never_half_written(setup, workers, tmp_path) -> None:
    svc, on_workers, inp, rows = setup
    team = _team(svc.accounts)
    (worker,) = workers(1)
    req = request(tmp_path, inp, team, "out.csv", max_credits=900)
    job = on_workers.submit(req, svc.csv_enrichment.plan(req))
    chunk = wait_for(lambda: leased_by(svc.engine, job.id, worker.pid), "the worker to hold a chunk")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=WAIT_S) == 0
    with read_transaction(svc.engine) as conn:
        chunks = conn.execute(select(_CH).where(_CH.c.job_id == job.id)).all()
        for ch in chunks:
            stored = conn.execute(
                select(func.count()).where(
                    _ROW.c.job_id == job.id, _ROW.c.row_index >= ch.first_row,
                    _ROW.c.row_index < ch.first_row + ch.row_count,
                )
            ).scalar_one()
            assert ch.state != "leased"  # finished or released: nobody left holding it
            assert stored == (ch.row_count if ch.state == "done" else 0), (ch.chunk_index, ch.state, stored)
    assert any(ch.id == chunk for ch in chunks)
    workers(1)  # another worker takes the released chunks over
    wait_for(lambda: on_workers.status(job.id).finished, "the job to finish")
    assert on_workers.download(job.id, tmp_path / "out.csv") == len(rows)
    credits = sum(int(r[-3]) for r in _read(tmp_path / "out.csv")[1:])
    assert credits == _spent(svc.accounts, team)
