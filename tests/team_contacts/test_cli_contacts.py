"""`tributary contacts ...` and `tributary lists ...` as a subprocess against a real database."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def tributary(world, db_url, tmp_path):
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url}

    def run(*args, code=0):
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert proc.returncode == code, proc.stderr
        return proc

    return run


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_contacts_and_lists_from_the_command_line(world, tributary, tmp_path) -> None:
    page = jsonl(tributary("contacts", "list", "acme", "rep@acme.test", "status:verified,accept_all", "--json").stdout)
    assert [c["full_name"] for c in page[:-1]] == ["Cat Chall", "Vera Fied"] and page[-1] == {"next_cursor": None}
    first = tributary("contacts", "list", "acme", "boss@acme.test", "owner:@me", "--limit", "1").stdout
    assert "No Body" in first and "(last page)" in first
    two = jsonl(tributary("contacts", "list", "acme", "rep@acme.test", "--limit", "2", "--json").stdout)
    rest = jsonl(tributary("contacts", "list", "acme", "rep@acme.test", "--limit", "2", "--cursor",
                           two[-1]["next_cursor"], "--json").stdout)  # fmt: skip
    assert len(two) == 3 and len(rest) == 3 and {c["id"] for c in two[:-1]}.isdisjoint(c["id"] for c in rest[:-1])
    vera = world.contact_ids["vera"]
    shown = tributary("contacts", "show", "acme", "rep@acme.test", str(vera)).stdout
    assert "vera@initech.test [verified]" in shown and "owner rep@acme.test" in shown

    assigned = tributary("contacts", "assign", "acme", "boss@acme.test", "rep2@acme.test", "company:initech", "--json")
    assert json.loads(assigned.stdout) == {"matched": 3, "changed": 3}

    tributary("lists", "create", "acme", "rep@acme.test", "Q3 push")
    added = tributary("lists", "add", "acme", "rep@acme.test", "Q3 push", "--ids", f"{vera},{world.contact_ids['mo']}")
    assert "2 of 2 contacts added to 'Q3 push'" in added.stdout
    removed = tributary("lists", "remove", "acme", "rep@acme.test", "Q3 push", "mo")
    assert "1 of 1 contacts removed from 'Q3 push'" in removed.stdout
    assert "Q3 push  1 contacts" in tributary("lists", "show", "acme", "rep@acme.test").stdout
    assert "Vera Fied" in tributary("lists", "show", "acme", "rep@acme.test", "Q3 push").stdout

    preview = json.loads(tributary("contacts", "export", "acme", "rep@acme.test", "list:Q3 push", "--dry-run",
                                   "--json").stdout)  # fmt: skip
    assert preview == {"contacts": 1, "net_new": 1, "price_credits": 2, "credits": 2}
    out = tmp_path / "q3.csv"
    done = tributary("contacts", "export", "acme", "rep@acme.test", "list:Q3 push", "-o", str(out))
    assert "1 contacts written" in done.stdout and "2 credits" in done.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert [r["email"] for r in rows] == ["vera@initech.test"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["contacts", "list", "nope", "rep@acme.test"], "unknown team 'nope'"),
        (["contacts", "list", "acme", "spy@other.test"], "unknown member 'spy@other.test' in team 'acme'"),
        (["contacts", "list", "acme", "rep@acme.test", "status:great"], "status: 'great' is not one of"),
        (["contacts", "list", "acme", "rep@acme.test", "--cursor", "junk"], "cursor: not a cursor"),
        (["contacts", "show", "other", "spy@other.test", "1"], "unknown contact 1"),
        (["contacts", "assign", "acme", "rep@acme.test", "rep2@acme.test", "--ids", "4"], "only its owner or an admin"),
        (["contacts", "assign", "acme", "rep@acme.test", "rep2@acme.test", "--ids", "x"], "--ids: 'x' is not"),
        (["contacts", "export", "acme", "rep@acme.test"], "-o/--out: name the CSV file"),
        (["contacts", "export", "acme", "rep@acme.test", "-o", "x.csv", "--max-credits", "1"], "over the cap of 1"),
        (["lists", "add", "acme", "rep@acme.test", "nope", "--ids", "1"], "unknown list 'nope'"),
        (["lists", "create", "acme", "rep@acme.test", ""], "list name: must not be empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(world, tributary, args, message) -> None:
    proc = tributary(*args, code=2)
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
