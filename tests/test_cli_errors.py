"""Bad invocations of the real `tributary` command: exit code 2, one line on stderr naming the thing
that is wrong, never a traceback or a boxed panel (issue 12 items 11, 13, 20). And every command has
help (item 20)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from cli.main import app

TOO_BIG = str(2**64)  # beyond any 64-bit column
UNREACHABLE_PG = "postgresql://tributary:secret@127.0.0.1:9/nowhere"  # port 9 (discard): nothing listens


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


# (arguments, environment overrides, what the one line must name). `{db}`: the seeded database URL.
BAD_INVOCATIONS: list[tuple[list[str], dict[str, str], str]] = [
    (["credits", "grant", "demo", "-100", "--expires", "2099-01-01", "--key", "k"], {}, "amount: must be positive"),
    (["credits", "grant", "demo"], {}, "Missing argument 'amount'"),
    (["credits", "grant", "demo", TOO_BIG, "--expires", "2099-01-01", "--key", "k"], {}, "'amount'"),
    (["credits", "log", "demo", "--limit", "-5"], {}, "'--limit'"),
    (["credits", "log", "demo", "--bogus"], {}, "No such option: --bogus"),
    (
        ["enrich", "in.csv", "-o", "out.csv", "--team", "demo", "--member", "rep@demo.test", "--max-credits", TOO_BIG],
        {},
        "'--max-credits'",
    ),
    (
        [
            "enrich",
            "in.csv",
            "-o",
            "out.csv",
            "--team",
            "demo",
            "--member",
            "rep@demo.test",
            "--max-credits",
            "2000000000",
        ],
        {},
        "'--max-credits': Input should be less than or equal to 1000000000",
    ),
    (["verify", "a@b.test", "--smtp-port", TOO_BIG], {}, "'--smtp-port'"),
    (["teams", "create", "3"], {}, "team name '3': must not be all digits"),
    (["teams", "create", "two\nlines"], {}, "must not contain newlines"),
    (
        ["plans", "create", "huge", "--credits", "99999999999"],
        {},
        "'--credits': Input should be less than or equal to 1000000000",
    ),
    (["credits", "balance", "2"], {}, "team '2' is ambiguous"),
    (["credits", "balance", "#x"], {}, "an id is written #"),
    (
        ["credits", "balance", "demo"],
        {"TRIBUTARY_DATABASE_URL": "sqlite:///{tmp}/never-migrated.db"},
        "run `tributary db upgrade`",
    ),
    (
        ["teams", "list"],
        {"TRIBUTARY_DATABASE_URL": UNREACHABLE_PG},
        "cannot connect to PostgreSQL at 127.0.0.1:9/nowhere",
    ),
    (["teams", "list"], {"TRIBUTARY_PROVIDERS": '[{"name": "hunter",'}, "TRIBUTARY_PROVIDERS: not valid JSON"),
    (["teams", "list"], {"TRIBUTARY_WEB_PORT": "abc"}, "TRIBUTARY_WEB_PORT"),
]


@pytest.mark.parametrize("backend", ["sqlite"])  # front-end behaviour; the storage suites cover both databases
def test_bad_invocations_are_one_line_exit_2_naming_the_thing(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env["TRIBUTARY_DATABASE_URL"] = db_url
    assert _run(["demo", "seed", "--small"], env, tmp_path).returncode == 0
    assert _run(["teams", "create", "acme"], env, tmp_path).returncode == 0  # id 2
    # A team named "2" from before names were checked: its name is another team's id.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE team SET name = '1' WHERE name = 'acme'")
        conn.execute(
            "INSERT INTO team (name, plan_id, cycle_anchor_day, contribute, created_at) "
            "SELECT '2', plan_id, 1, 1, created_at FROM team WHERE name = 'demo'"
        )
    failures = []
    for args, overrides, named in BAD_INVOCATIONS:
        run_env = {**env, **{k: v.replace("{tmp}", str(tmp_path)) for k, v in overrides.items()}}
        proc = _run(args, run_env, tmp_path)
        lines = proc.stderr.strip().splitlines()
        if proc.returncode != 2 or len(lines) != 1 or named not in proc.stderr or "Traceback" in proc.stderr:
            failures.append((args, overrides, proc.returncode, proc.stderr[-600:]))
    assert not failures, "\n".join(map(repr, failures))
    # The secret in a database URL is never echoed.
    proc = _run(["teams", "list"], {**env, "TRIBUTARY_DATABASE_URL": UNREACHABLE_PG}, tmp_path)
    assert "secret" not in proc.stderr


def _commands(command, path: str = "tributary"):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_command_and_subcommand_has_help() -> None:
    empty = [path for path, command in _commands(typer.main.get_command(app)) if not (command.help or "").strip()]
    assert not empty, f"commands without help: {empty}"
