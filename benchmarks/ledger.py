"""Ledger benchmark: charges per second on one hot wallet, against the raw hot-row limit.

    .venv/bin/python -m benchmarks.ledger [--pg URL] [--seconds S] [--workers 1,4,16] [--no-pg] [--no-sqlite]

For each database (PostgreSQL: a scratch database created on the server of `--pg` and dropped
afterwards; SQLite: a temporary file) and each number of concurrent worker processes, it measures
in the same run:

- raw: transactions per second of a bare `UPDATE bench_hot SET balance = balance - 1 WHERE id = 1`
  (one statement, one row, one commit, through the project's own write transaction), the physical
  limit for a single hot account on that database;
- ledger: `Ledger.charge` of 1 credit with a unique idempotency key, all on one team's wallet.

and prints both rates and their ratio (the issue's aim: ledger >= 0.5 x raw at 16 workers). It also
counts the SQL statements one charge sends (each is a round trip to PostgreSQL).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from core.accounts import Accounts
from core.ledger import Ledger, UsageMeta
from storage.db import make_engine, write_transaction
from storage.migrate import upgrade
from storage.models.enums import Category, Feature

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
META = UsageMeta(category=Category.EMAIL, feature=Feature.API, action="bench")
HOT_BALANCE = 10**15
LEDGER_CREDITS = 1_000_000_000


@dataclass
class Result:
    backend: str
    workers: int
    raw_rate: float
    ledger_rate: float

    @property
    def ratio(self) -> float:
        return self.ledger_rate / self.raw_rate if self.raw_rate else 0.0


# ---- workers (run in spawned processes) -------------------------------------------------------


def _raw_op(engine: Any) -> None:
    with write_transaction(engine) as conn:
        conn.execute(text("UPDATE bench_hot SET balance = balance - 1 WHERE id = 1"))


def _worker(kind: str, url: str, team: int, worker: int, run: str, seconds: float, barrier: Any, out: Any) -> None:
    engine = make_engine(url, pool_size=1)
    ledger = Ledger(engine)
    counter = 0

    def op() -> None:
        nonlocal counter
        counter += 1
        if kind == "raw":
            _raw_op(engine)
        else:
            ledger.charge(team, 1, key=f"{run}-{worker}-{counter}", meta=META)

    try:
        op()  # warm up: connect, prepare
        done = 0
        barrier.wait(timeout=300)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            op()
            done += 1
        out.put((worker, done, None))
    except BaseException as exc:  # report, never hang the parent
        out.put((worker, 0, repr(exc)))
    finally:
        engine.dispose()


def _measure(kind: str, url: str, team: int, workers: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    run = f"{kind}{workers}-{uuid.uuid4().hex[:8]}"
    procs = [ctx.Process(target=_worker, args=(kind, url, team, w, run, seconds, barrier, out)) for w in range(workers)]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    started = time.monotonic()
    total = 0
    for _ in procs:
        worker, done, error = out.get(timeout=seconds + 300)
        if error:
            raise RuntimeError(f"{kind} worker {worker} failed: {error}")
        total += done
    elapsed = max(time.monotonic() - started, seconds)
    for p in procs:
        p.join()
    return total / elapsed


# ---- databases ------------------------------------------------------------------------------


def _prepare(url: str) -> int:
    """Migrate, create the hot row and a team with credits for every charge. Returns the team id."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with write_transaction(engine) as conn:
            conn.execute(text("CREATE TABLE bench_hot (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)"))
            conn.execute(text("INSERT INTO bench_hot (id, balance) VALUES (1, :b)"), {"b": HOT_BALANCE})
        accounts = Accounts(engine)
        accounts.create_plan("bench-none", monthly_credits=0)
        team = accounts.create_team("bench", plan="bench-none").id
        for n in range(5):
            accounts.ledger.grant(team, LEDGER_CREDITS, key=f"bench-credits-{n}", expires_at=None)
        return team
    finally:
        engine.dispose()


def _statements_per_charge(url: str, team: int) -> list[str]:
    """The SQL one charge sends (BEGIN and COMMIT included): each is a client-server round trip."""
    engine = make_engine(url, pool_size=1)
    ledger = Ledger(engine)
    ledger.charge(team, 1, key=f"profile-warm-{uuid.uuid4().hex}", meta=META)
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, params, context, executemany) -> None:
        seen.append(" ".join(statement.split())[:90])

    @event.listens_for(engine, "commit")
    def _commit(conn) -> None:
        seen.append("COMMIT")

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        if engine.dialect.name != "sqlite":  # SQLite's BEGIN is already a cursor statement
            seen.append("BEGIN (implicit, sent with the first statement by psycopg)")

    ledger.charge(team, 1, key=f"profile-{uuid.uuid4().hex}", meta=META)
    engine.dispose()
    return seen


def _check(url: str, team: int) -> None:
    engine = make_engine(url)
    try:
        ledger = Ledger(engine)
        assert sum(ledger.account_totals().values()) == 0, "accounts do not sum to zero"
        assert ledger.balance(team).available_credits >= 0
    finally:
        engine.dispose()


def _run_backend(name: str, url: str, workers: list[int], seconds: float) -> tuple[list[Result], list[str]]:
    team = _prepare(url)
    results = []
    for n in workers:
        raw = _measure("raw", url, team, n, seconds)
        charges = _measure("ledger", url, team, n, seconds)
        result = Result(name, n, raw, charges)
        print(f"  {name:<10} {n:>3} workers: raw {raw:9.0f}/s  ledger {charges:8.0f}/s  ratio {result.ratio:.2f}")
        sys.stdout.flush()
        results.append(result)
    statements = _statements_per_charge(url, team)
    _check(url, team)
    return results, statements


def _pg_admin(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False), autocommit=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("TRIBUTARY_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell (default 5)")
    parser.add_argument("--workers", default="1,4,16", help="comma-separated worker-process counts")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]

    print(f"ledger benchmark: {args.seconds:g} s per cell, workers {workers}, {os.cpu_count()} CPUs")
    results: list[Result] = []
    profiles: dict[str, list[str]] = {}
    if not args.no_pg:
        name = f"trib_bench_{uuid.uuid4().hex[:10]}"
        with _pg_admin(args.pg) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            found, profiles["postgresql"] = _run_backend("postgresql", url, workers, args.seconds)
            results += found
        finally:
            with _pg_admin(args.pg) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="trib-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            found, profiles["sqlite"] = _run_backend("sqlite", url, workers, args.seconds)
            results += found

    print()
    print("| database   | workers | raw UPDATE tx/s | ledger charges/s | ledger/raw |")
    print("|------------|--------:|----------------:|-----------------:|-----------:|")
    for r in results:
        print(
            f"| {r.backend:<10} | {r.workers:>7} | {r.raw_rate:>15,.0f} | {r.ledger_rate:>16,.0f} | {r.ratio:>10.2f} |"
        )
    print()
    for r in results:
        if r.workers == max(workers):
            verdict = "met" if r.ratio >= 0.5 else "NOT met"
            print(f"aim (ledger >= 0.5 x raw at {r.workers} workers) on {r.backend}: {verdict} ({r.ratio:.2f})")
    for backend, statements in profiles.items():
        print()
        print(f"one charge on {backend}: {len(statements)} statements")
        for s in statements:
            print(f"  {s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
