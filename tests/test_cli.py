"""The `tributary` command end to end, as a subprocess against a real database."""

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
            [sys.executable, "-m", "cli.main", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def test_accounts_credits_access_and_log(tributary) -> None:
    assert "database at revision" in tributary("db", "upgrade").stdout
    assert tributary("db", "status").returncode == 0
    assert "demo team seeded" in tributary("demo", "seed", "--if-empty").stdout
    assert "skipped" in tributary("demo", "seed", "--if-empty").stdout
    created = json.loads(tributary("teams", "create", "acme", "--plan", "professional", "--json").stdout)
    assert created["plan"]["monthly_credits"] == 5000
    tributary("members", "add", "acme", "boss@acme.test", "--admin")

    balance = json.loads(tributary("credits", "balance", "demo", "--json").stdout)
    assert balance["available"] == 1000

    access = json.loads(tributary("access", "email", "demo", "rep@demo.test", "jane.doe@acme.test", "--json").stdout)
    assert access["charged_credits"] == 1 and access["email"]["status"] == "verified"
    again = json.loads(tributary("access", "email", "demo", "rep@demo.test", "jane.doe@acme.test", "--json").stdout)
    assert again["charged_credits"] == 0 and again["already_accessed"] is True

    grant = ["credits", "grant", "demo", "25", "--expires", "2099-01-01", "--key", "pack-1", "--note", "Q1 top-up"]
    assert "granted 25 credits to demo" in tributary(*grant).stdout
    replay = tributary(*grant).stdout  # replay: no-op, and says so
    assert "already granted under key 'pack-1'" in replay and "nothing changed" in replay
    balance = json.loads(tributary("credits", "balance", "demo", "--json").stdout)
    assert balance["available"] == 1024
    assert [(lot["source"], lot["remaining"], lot["expires_at"][:10], lot["note"]) for lot in balance["lots"]] == [
        ("allotment", 999, balance["cycle_ends_at"][:10], "billing cycle allotment"),
        ("topup", 25, "2099-01-01", "Q1 top-up"),
    ]
    assert "25 credits of 25 (topup), expires 2099-01-01 - Q1 top-up" in tributary("credits", "balance", "demo").stdout

    log = [json.loads(line) for line in tributary("credits", "log", "demo", "--json").stdout.splitlines()]
    assert [(r["credits"], r["feature"], r["action"], r["user"]) for r in log] == [
        (-25, None, "grant", None),
        (1, "cli", "access_email", "rep@demo.test"),
        (-1000, None, "allotment", None),
    ]
    assert log[0]["description"] == "Q1 top-up (expires 2099-01-01)"
    spend_only = tributary("credits", "log", "demo", "--no-grants", "--json").stdout.splitlines()
    assert [json.loads(line)["action"] for line in spend_only] == ["access_email"]
    assert "nothing to close" in tributary("cycle", "close", "demo").stdout


BAD_INPUT = [
    (["credits", "grant", "demo", "0", "--expires", "2099-01-01", "--key", "k"], "amount: must be positive"),
    (["credits", "grant", "demo", "--expires", "2099-01-01", "--key", "k", "--", "-5"], "must be positive"),
    (["credits", "grant", "demo", "5", "--expires", "31/12/2099", "--key", "k"], "--expires: '31/12/2099' is not"),
    (["credits", "grant", "demo", "5", "--expires", "2001-01-01", "--key", "k"], "is not in the future"),
    (["credits", "grant", "ghost", "5", "--expires", "2099-01-01", "--key", "k"], "unknown team 'ghost'"),
    (["access", "email", "demo", "nobody@demo.test", "1"], "unknown member 'nobody@demo.test'"),
    (["access", "email", "demo", "rep@demo.test", "Jane"], "not an id, an email address or a LinkedIn"),
    (["members", "add", "demo", "not-an-email"], "member email 'not-an-email'"),
    (["teams", "create", "x", "--plan", "gold"], "unknown plan 'gold'"),
]


@pytest.mark.parametrize("backend", ["sqlite"])  # front-end behaviour; the storage suites cover both databases
def test_bad_input_is_one_clear_line_and_writes_nothing(tributary) -> None:
    tributary("demo", "seed")
    before = tributary("credits", "balance", "demo", "--json").stdout
    for args, message in BAD_INPUT:
        proc = tributary(*args, ok=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert tributary("credits", "balance", "demo", "--json").stdout == before
    assert "unknown" not in tributary("teams", "list", "--json").stdout and "x" not in [
        json.loads(line)["name"] for line in tributary("teams", "list", "--json").stdout.splitlines()
    ]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_reused_key_with_another_body_is_refused(tributary) -> None:
    tributary("demo", "seed")
    tributary("credits", "grant", "demo", "5", "--expires", "2099-01-01", "--key", "k1")
    proc = tributary("credits", "grant", "demo", "6", "--expires", "2099-01-01", "--key", "k1", ok=False)
    assert proc.returncode == 2 and "idempotency key 'k1' was already used" in proc.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_small_things_of_the_first_hour(tributary) -> None:
    """Issue 12 item 20: piped tables keep whole cells; `relay show` without a relay says so; 1 credit."""
    tributary("demo", "seed", "--small")
    note = "Q1 top-up for the spring campaign, approved by finance on the third of March, ticket FIN-2231 " * 2
    out = tributary("credits", "grant", "demo", "1", "--expires", "2099-01-01", "--key", "one", "--note", note).stdout
    assert out.startswith("granted 1 credit to demo")
    log = tributary("credits", "log", "demo").stdout  # captured: not a terminal
    assert any(note.strip() in line for line in log.splitlines()), log
    assert "no relay set for team demo" in tributary("relay", "show", "demo").stdout
