"""The multi-process proof on PostgreSQL + Redis: real `tributary worker` processes share one job.

- three workers, one SIGKILLed while it holds a chunk (waited on in the database, not slept on): the
  output is complete, in order and identical to an in-process run of the same file; the ledger's
  drop equals the credits the rows report; the cap is never exceeded;
- the same with a cancel in the middle (rows still say exactly what the ledger took);
- a SIGTERM'd worker finishes or releases its chunk: every chunk is written whole or not at all.

Size: 3,000 rows over 100 people (each person 30 times) rather than 20,000, to keep the test near
a minute on a shared 2-core machine; the mechanism does not depend on the size.
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
from tests.enrichment.test_jobs import _read, _spent, _team

REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")
ROWS, PEOPLE, CHUNK_ROWS = 3000, 100, 150
WAIT_S = 300.0  # a bound on waiting for state, never a timing assertion
_CH = EnrichmentChunk.__table__
_ROW = EnrichmentRow.__table__

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="Redis not configured: set TRIBUTARY_TEST_REDIS_URL")


@pytest.fixture
def backend() -> str:
    return "postgresql"  # several processes on one database: the production set-up


@pytest.fixture
def env(db_url, tmp_path):
    name = f"tributary-test-{uuid.uuid4().hex[:12]}"
    environ = {
        **os.environ,
        "TRIBUTARY_DATABASE_URL": db_url,
        "TRIBUTARY_DEVELOPMENT": "true",  # throwaway workers: no production keys to check
        "TRIBUTARY_REDIS_URL": REDIS_URL,
        "TRIBUTARY_HUEY_NAME": name,
        "TRIBUTARY_ENRICH_CHUNK_ROWS": str(CHUNK_ROWS),
        "TRIBUTARY_ENRICH_CHUNK_LEASE_S": "3",
        "TRIBUTARY_ENRICH_TEAM_CHUNKS": "6",
        "TRIBUTARY_ENRICH_WORKERS": "4",
        "TRIBUTARY_LOG_JSON": "true",
    }
    settings = Settings(
        _env_file=None, database_url=db_url, redis_url=REDIS_URL, huey_name=name,
        enrich_chunk_rows=CHUNK_ROWS, enrich_chunk_lease_s=3, enrich_team_chunks=6, enrich_workers=4,
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
def setup(engine, env, tmp_path):
    people = w.people(PEOPLE)
    w.seed(engine, people)
    rows = [w.row(people[(i * 7919) % PEOPLE]) for i in range(ROWS)]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    svc = Services(settings=env[1], engine=engine)
    jobs = Jobs(svc)
    return svc, CsvOnWorkers(svc.csv_enrichment, jobs.enrichment.engine), inp, rows


def test_three_workers_one_killed_mid_chunk_write_what_one_process_writes(setup, workers, tmp_path) -> None:
    svc, on_workers, inp, rows = setup
    accounts = svc.accounts
    local_team, team = _team(accounts), _team(accounts)
    cap = 900  # above the file's cost (about 450): which people a binding cap lets through depends on lookup order
    local = request(tmp_path, inp, local_team, "local.csv", max_credits=cap)
    plan = svc.csv_enrichment.plan(local)
    job, _ = svc.csv_enrichment.start_or_resume(local, plan)
    svc.csv_enrichment.run(local, plan, job)

    procs = workers(3)
    remote = request(tmp_path, inp, team, "remote.csv", max_credits=cap)
    job = on_workers.submit(remote, svc.csv_enrichment.plan(remote))
    victim = procs[0]
    killed_chunk = wait_for(lambda: leased_by(svc.engine, job.id, victim.pid), "the victim to hold a chunk")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    wait_for(lambda: on_workers.status(job.id).finished, "the job to finish")
    on_workers.download(job.id, tmp_path / "remote.csv")

    out = _read(tmp_path / "remote.csv")
    assert out == _read(tmp_path / "local.csv")
    credits = sum(int(r[-3]) for r in out[1:])
    assert credits == _spent(accounts, team) == on_workers.status(job.id).job.progress.charged_credits <= cap
    with read_transaction(svc.engine) as conn:
        attempts = conn.execute(select(_CH.c.attempt).where(_CH.c.id == killed_chunk)).scalar_one()
        stored = conn.execute(select(func.count()).where(_ROW.c.job_id == job.id)).scalar_one()
    assert attempts >= 2 and stored == len(rows)  # the dead worker's chunk was run again, once more


def test_a_cancel_in_the_middle_reaches_every_worker_and_rows_say_what_the_ledger_took(
    setup, workers, tmp_path
) -> None:
    svc, on_workers, inp, rows = setup
    team = _team(svc.accounts)
    workers(3)
    req = request(tmp_path, inp, team, "out.csv", max_credits=400)
    job = on_workers.submit(req, svc.csv_enrichment.plan(req))
    wait_for(lambda: on_workers.status(job.id).chunks.done >= 2, "two chunks to be written")
    svc.enrichment_jobs.cancel(job.id)
    wait_for(lambda: on_workers.status(job.id).finished, "the cancelled job to settle")
    on_workers.download(job.id, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    assert len(out) == len(rows) + 1
    credits = sum(int(r[-3]) for r in out[1:])
    assert credits == _spent(svc.accounts, team) <= 400
    assert any(r[-1] == "not enriched: the job was cancelled" for r in out[1:])
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
