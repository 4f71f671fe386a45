"""`tributary digest ...` end to end, as a subprocess against a real database of each backend."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def tributary(db_url, tmp_path):
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url}

    def run(*args, ok=True):
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def test_digest_command(tributary, tmp_path) -> None:
    tributary("demo", "seed")
    tributary("access", "email", "demo", "rep@demo.test", "jane.doe@acme.test")
    chart = tmp_path / "week.png"
    digest = json.loads(tributary("digest", "demo", "--period", "weekly", "--json", "--chart", str(chart)).stdout)
    assert digest["spent_credits"] == 1 and digest["period"]["kind"] == "weekly"
    assert {c["category"]: c["credits"] for c in digest["by_category"]}["email"] == 1
    assert [(m["email"], m["credits"]) for m in digest["by_member"]] == [("rep@demo.test", 1)]
    assert digest["forecast"]["window_days"] == 7 and digest["forecast"]["beyond_horizon"] is True
    assert digest["balance"]["available_credits"] == 999
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    text = tributary("digest", "demo", "--period", "daily").stdout
    assert "Spent: 1 credit" in text and "email 1, mobile 0" in text and "rep@demo.test  1" in text
    old = tributary("digest", "show", "demo", "--period", "daily", "--at", "2020-01-06").stdout
    assert "daily, Mon 2020-01-06 (UTC)" in old and "Spent: 0 credits" in old

    assert "admin@demo.test gets the weekly digest" in tributary(
        "digest", "prefs", "demo", "admin@demo.test", "--period", "weekly"
    ).stdout


BAD_INPUT = [
    (["digest", "prefs", "demo", "rep@demo.test", "--period", "weekly"], "not an admin of team 'demo'"),
    (["digest", "demo", "--period", "monthly"], "period: 'monthly' is not one of daily, weekly"),
    (["digest", "demo", "--at", "06/01/2020"], "--at: '06/01/2020' is not a date"),
    (["digest", "demo", "--chart", "out.jpg"], "--chart: 'out.jpg' must be a .png file"),
    (["digest", "demo", "--chart", "no/such/dir/out.png"], "--chart: cannot write 'no/such/dir/out.png'"),
]


def test_digest_bad_input_is_one_clear_line(tributary) -> None:
    tributary("demo", "seed")
    for args, message in BAD_INPUT:
        proc = tributary(*args, ok=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
