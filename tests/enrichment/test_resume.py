"""A CSV job killed half-way (SIGKILL of its process) and resumed: same output as an uninterrupted run,
and the ledger shows every (person, kind) charged at most once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from core.accounts import Accounts
from storage.db import read_transaction
from storage.models import EnrichmentJob, EnrichmentRow
from storage.models.enums import TransferKind
from tests.enrichment import world as w

# A charge is a posted hold (two-phase) or a single-phase spend (an uncapped job's requests).
_CHARGES = (TransferKind.POST, TransferKind.SPEND)

ROOT = Path(__file__).resolve().parents[2]


def _job_process(db_url: str, inp: Path, out: Path, team: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.enrichment.run_job", db_url, str(inp), str(out), team, f"rep@{team}.example",
         *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored_rows(engine) -> int:
    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).select_from(EnrichmentRow)).scalar_one()


def test_killed_job_resumes_to_the_same_output_and_charges_nobody_twice(engine, db_url, tmp_path) -> None:
    people = w.people(24)
    w.seed(engine, people)
    accounts = Accounts(engine)
    for team in ("killed", "clean"):
        accounts.create_team(team, plan="basic")
        accounts.add_member(team, f"rep@{team}.example")
    rows = [w.row(p, note=str(i)) for i, p in enumerate(people + people[:12])]
    inp = w.write_csv(tmp_path / "in.csv", rows)

    proc = _job_process(db_url, inp, tmp_path / "killed.csv", "killed")
    deadline = time.monotonic() + 60
    while _stored_rows(engine) < 9:
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the job never got going"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored_at_kill = _stored_rows(engine)
    assert stored_at_kill < len(rows), "killed too late to prove anything"
    assert not (tmp_path / "killed.csv").exists()  # never a half output under the real name
    with read_transaction(engine) as conn:
        assert conn.execute(select(EnrichmentJob.status)).scalar_one() == "running"

    resumed = _job_process(db_url, inp, tmp_path / "killed.csv", "killed", "--resume")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    clean = _job_process(db_url, inp, tmp_path / "clean.csv", "clean")
    assert clean.wait(timeout=120) == 0, clean.stderr.read()

    killed_out = list(csv.reader((tmp_path / "killed.csv").open(newline="", encoding="utf-8-sig")))
    clean_out = list(csv.reader((tmp_path / "clean.csv").open(newline="", encoding="utf-8-sig")))
    assert len(killed_out) == len(rows) + 1
    assert killed_out == clean_out

    for team in ("killed", "clean"):
        team_id = accounts.team(team).id
        posts = [t for t in accounts.ledger.transfers(team_id) if t.kind in _CHARGES]
        per_request = [t.meta.data_requested for t in posts]
        assert len(per_request) == len(set(per_request)), f"{team}: a (person, kind) was charged twice"
        written = sum(int(r[-3]) for r in (killed_out if team == "killed" else clean_out)[1:])
        assert sum(t.amount_credits for t in posts) == written
        assert accounts.ledger.balance(team_id).held_credits == 0
    with read_transaction(engine) as conn:
        runs = dict(conn.execute(select(EnrichmentJob.team_id, EnrichmentJob.runs)).all())
    assert runs[accounts.team("killed").id] == 2
