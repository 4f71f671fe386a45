"""`tributary enrich --on-workers`, `enrich-jobs status|wait|download`, end to end: subprocesses, a
real `tributary worker`, SQLite and PostgreSQL (queue on huey's SQLite storage, as `make run` has)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.enrichment import world as w
from tests.enrichment.test_jobs import _read


@pytest.fixture
def tributary(db_url, tmp_path, engine):
    people = w.people(12)
    w.seed(engine, people)
    env = {
        **os.environ,
        "TRIBUTARY_DATABASE_URL": db_url,
        "TRIBUTARY_DEVELOPMENT": "true",  # throwaway workers: no production keys to check
        "TRIBUTARY_HUEY_SQLITE_PATH": str(tmp_path / "huey.db"),
        "TRIBUTARY_ENRICH_CHUNK_ROWS": "4",
    }
    env.pop("TRIBUTARY_REDIS_URL", None)
    procs = []

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )

    def worker(*flags):
        log = (tmp_path / "worker.log").open("w")
        procs.append(
            subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--no-periodic", *flags], env=env,
                             cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        )

    run.people = people
    run.worker = worker
    yield run
    for p in procs:
        p.terminate()
        p.wait(timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    tick = threading.Event()
    for _ in range(600):  # the worker may still be starting: wait for its port to answer
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                return response.read().decode()
        except OSError:
            tick.wait(0.1)
    raise AssertionError("the worker's metrics port never answered")


def _without_credits(path):
    return [r[:-3] + r[-2:] for r in _read(path)]


def test_enrich_on_workers_then_wait_and_download(tributary, tmp_path) -> None:
    assert tributary("teams", "create", "acme", "--plan", "basic").returncode == 0
    assert tributary("members", "add", "acme", "rep@acme.example").returncode == 0
    rows = [w.row(p) for p in tributary.people] * 2
    w.write_csv(tmp_path / "in.csv", rows)
    local = tributary("enrich", "in.csv", "-o", "local.csv", "--team", "acme", "--member", "rep@acme.example",
                      "--email")
    assert local.returncode == 0, local.stderr

    submitted = tributary("enrich", "in.csv", "-o", "unused.csv", "--team", "acme", "--member",
                          "rep@acme.example", "--email", "--on-workers")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    resumed = tributary("enrich", "in.csv", "-o", "x.csv", "--team", "acme", "--member", "rep@acme.example",
                        "--email", "--resume")
    assert resumed.returncode == 2 and resumed.stderr.strip() == (
        f"error: --resume: job {job_id} runs on the workers; use `tributary enrich-jobs wait {job_id}`"
    )
    running = tributary("enrich-jobs", "resume", job_id)
    assert running.returncode == 2 and running.stderr.strip() == (
        f"error: job {job_id} is running: only an incomplete job on the workers resumes"
    )
    early = tributary("enrich-jobs", "download", job_id, "-o", "remote.csv")
    status = json.loads(tributary("enrich-jobs", "status", job_id, "--json").stdout)
    if not status["finished"]:
        assert early.returncode == 2 and "still running" in early.stderr and len(early.stderr.splitlines()) == 1
    port = _free_port()
    tributary.worker("--metrics-port", str(port))
    waited = tributary("enrich-jobs", "wait", job_id)
    assert waited.returncode == 0 and waited.stdout.strip() == f"job {job_id} is done"
    assert tributary("enrich-jobs", "download", job_id, "-o", "remote.csv").returncode == 0
    assert _without_credits(tmp_path / "remote.csv") == _without_credits(tmp_path / "local.csv")
    assert {r[-3] for r in _read(tmp_path / "remote.csv")[1:]} == {"0"}  # paid by the first run

    both = tributary("enrich", "in.csv", "-o", "waited.csv", "--team", "acme", "--member", "rep@acme.example",
                     "--email", "--on-workers", "--wait")
    assert both.returncode == 0, both.stderr
    assert _read(tmp_path / "waited.csv") == _read(tmp_path / "remote.csv")
    status = json.loads(tributary("enrich-jobs", "status", job_id, "--json").stdout)
    assert status["finished"] and status["chunks"]["done"] == 6 and status["job"]["status"] == "done"

    scraped = _scrape(port)
    assert 'tributary_enrich_chunks_finished_total{result="done"}' in scraped
    rows_line = next(line for line in scraped.splitlines() if line.startswith("tributary_enrich_rows_processed_total "))
    assert float(rows_line.split()[-1]) == 2 * len(rows)  # both jobs ran on this worker
    assert 'tributary_enrich_chunks{state="leased"} 0.0' in scraped

    missing = tributary("enrich-jobs", "download", "999", "-o", "x.csv")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no enrichment job 999"
