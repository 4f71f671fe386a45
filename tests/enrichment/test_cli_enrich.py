"""`tributary enrich` as a new user meets it (issue 12): a real subprocess against a real database."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.accounts import Accounts
from storage.models.enums import TransferKind
from tests.enrichment import world as w

ROOT = Path(__file__).resolve().parents[2]
_CHARGES = (TransferKind.POST, TransferKind.SPEND)


def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "TRIBUTARY_DATABASE_URL": db_url, "COLUMNS": "200"}


@pytest.fixture
def tributary(db_url, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=_env(db_url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture
def team(engine) -> str:
    w.seed(engine, w.people(12))
    accounts = Accounts(engine)
    accounts.create_team("acme", plan="basic")
    accounts.add_member("acme", "rep@acme.example")
    return "acme"


def _enrich(inp: Path, out: Path, *extra: str) -> list[str]:
    return ["enrich", str(inp), "-o", str(out), "--team", "acme", "--member", "rep@acme.example", *extra]


def _one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("backend", ["sqlite"])  # front-end behaviour; the money is covered on both databases
def test_json_paths_quotes_and_preview(tributary, team, tmp_path) -> None:
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in w.people(12)])
    (tmp_path / "folder").mkdir()
    bad_quote = tmp_path / "quote.csv"
    bad_quote.write_text('First Name,Last Name,Company\nPat0,Lastname0,Initech\n"Pat1,Lastname1,Initech\nx,y,z\n')
    for args, message in [
        (_enrich(inp, tmp_path / "missing" / "out.csv", "--email"), "does not exist"),
        (_enrich(inp, tmp_path / "folder", "--email", "--max-credits", "5"), "folder: is a folder, not a file"),
        (_enrich(tmp_path / "folder", tmp_path / "out.csv", "--email"), "folder: is a folder, not a file"),
        (_enrich(bad_quote, tmp_path / "out.csv", "--email"), "quote.csv, line 3: a quoted field starts here"),
        (_enrich(inp, tmp_path / "out.csv", "--encoding", "klingon"), "--encoding 'klingon': unknown encoding"),
    ]:
        _one_line_error(tributary(*args), message)
    jobs = tributary("enrich-jobs", "list", "acme", "--json")
    assert jobs.returncode == 0 and jobs.stdout == ""  # nothing was started, held or charged
    assert list(tmp_path.rglob("*.partial")) == [] and list((tmp_path / "folder").iterdir()) == []

    preview = tributary(*_enrich(inp, tmp_path / "out.csv", "--email", "--mobile", "--dry-run"))
    assert preview.returncode == 0, preview.stderr
    assert "needs up to 108 credits, you have 1000" in preview.stdout
    assert "contributes to the shared database: yes" in preview.stderr
    assert "tributary teams set-contribute acme --off" in preview.stderr
    assert tributary("teams", "set-contribute", "acme", "--off").returncode == 0
    preview = tributary(*_enrich(inp, tmp_path / "out.csv", "--email", "--dry-run", "--json"))
    estimate = json.loads(preview.stdout)
    assert estimate["contributes"] is False and estimate["available_credits"] == 1000

    done = tributary(*_enrich(inp, tmp_path / "out.csv", "--email", "--mobile", "--max-credits", "5000", "--json"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["output_path"] == str(tmp_path / "out.csv") and summary["status"] == "done"
    assert summary["rows"] == 12 and summary["credits_charged"] > 0
    assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8


def _spent(accounts: Accounts, team: str) -> int:
    team_id = accounts.team(team).id
    return sum(t.amount_credits for t in accounts.ledger.transfers(team_id) if t.kind in _CHARGES)


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def test_ctrl_c_marks_the_job_interrupted_releases_its_hold_and_says_what_to_do(
    engine, db_url, team, tmp_path
) -> None:
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p, note=str(i)) for i, p in enumerate(w.people(12) * 3)])
    out = tmp_path / "out.csv"
    args = [sys.executable, "-m", "tests.enrichment.run_cli", *_enrich(inp, out, "--email", "--mobile")]
    proc = subprocess.Popen(
        [*args, "--max-credits", "500"], env=_env(db_url), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()  # the first progress event: the job is under way
    assert line.startswith("progress "), (line, proc.stderr.read() if proc.poll() is not None else "")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    message = stderr.strip().splitlines()[-1]
    assert "interrupted: job 1 is interrupted" in message and "holding 0 credits" in message, stderr
    assert "--resume" in message and "tributary enrich-jobs cancel 1" in message
    assert "Traceback" not in stderr
    assert not out.exists() and list(tmp_path.glob("*.partial")) == []

    accounts = Accounts(engine)
    assert accounts.ledger.balance(accounts.team(team).id).held_credits == 0  # the rule: released at once
    listed = subprocess.run(
        [sys.executable, "-m", "cli.main", "enrich-jobs", "list", "acme", "--json"],
        env=_env(db_url), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    (job,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert job["status"] == "interrupted" and job["held_credits"] == 0

    resumed = subprocess.run(
        [*args, "--resume", "--json"], env=_env(db_url), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["status"] == "done" and summary["resumed"] is True
    rows = _read(out)
    credits = rows[0].index("tributary_credits_charged")
    assert len(rows) == 37 and sum(int(r[credits]) for r in rows[1:]) == _spent(accounts, team)
    keys = [t.meta.data_requested for t in accounts.ledger.transfers(accounts.team(team).id) if t.kind in _CHARGES]
    assert len(keys) == len(set(keys))  # nobody charged twice across the interruption
    assert accounts.ledger.balance(accounts.team(team).id).held_credits == 0


def test_ctrl_c_inside_a_database_call_still_counts_as_ctrl_c() -> None:
    """psycopg re-raises a KeyboardInterrupt that lands in the pool's ping as its own error (seen in
    the Ctrl-C test above, ~1 run in 4): the job must still be left `interrupted`, not failed."""
    from sqlalchemy.exc import ProgrammingError

    from core.enrichment.csv_enrich import _interrupted

    def driver_error() -> ProgrammingError:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise ValueError("can't change 'autocommit' now")  # noqa: B904 - as psycopg does: context only
        except ValueError as inner:
            try:
                raise ProgrammingError("SELECT 1", {}, inner) from inner
            except ProgrammingError as outer:
                return outer

    wrapped = driver_error()
    assert isinstance(wrapped.__cause__.__context__, KeyboardInterrupt)
    assert _interrupted(KeyboardInterrupt()) and _interrupted(wrapped)
    assert not _interrupted(ProgrammingError("SELECT 1", {}, ValueError("a real error")))
