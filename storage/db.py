"""Database engines and transactions for SQLite (embedded) and PostgreSQL (psycopg 3).

SQLite: WAL so readers never block the writer, a busy timeout so writers queue instead of failing,
and `BEGIN IMMEDIATE` for write transactions so two writers never both read-then-upgrade (the
classic SQLITE_BUSY deadlock). PostgreSQL: READ COMMITTED plus explicit row locks taken by callers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

SQLITE_PAGE_CACHE_KIB = 512
SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_TXN_MAX_ATTEMPTS = 12
# PostgreSQL SQLSTATEs that mean "run the whole transaction again".
_PG_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Bounded per connection (SQLite's default is 2 MiB): a pool of connections each filling its
        # cache over a long job is memory that grows with the database, not with the work.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_PAGE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in _PG_RETRYABLE_SQLSTATES:
            return True
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            return True
    return False


_sqlite_writer_locks: dict[str, threading.RLock] = {}
_sqlite_writer_locks_guard = threading.Lock()


def _sqlite_writer_lock(engine: Engine) -> threading.RLock:
    # SQLite admits one writer at a time. Threads of one process queue on this lock instead of on
    # SQLite's busy handler, which sleeps in growing steps and wastes most of the time under load.
    key = str(engine.url.database)
    with _sqlite_writer_locks_guard:
        return _sqlite_writer_locks.setdefault(key, threading.RLock())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: BEGIN IMMEDIATE on SQLite, plain BEGIN on PostgreSQL."""
    if not is_sqlite(engine):
        with engine.begin() as conn:
            yield conn
        return
    with _sqlite_writer_lock(engine), _immediate(engine).begin() as conn:
        yield conn


def _immediate(engine: Engine) -> Engine:
    # Built once per engine and kept on it: a new options engine per write cost measurable time on
    # the hot path (and a side table keyed by engine would keep every engine alive).
    bound = engine.__dict__.get("_tributary_immediate")
    if bound is None:
        bound = engine.execution_options(sqlite_begin="IMMEDIATE")
        engine.__dict__["_tributary_immediate"] = bound
    return bound


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn


@retry(
    retry=retry_if_exception(_is_retryable),
    stop=stop_after_attempt(WRITE_TXN_MAX_ATTEMPTS),
    wait=wait_random_exponential(multiplier=0.005, max=0.5),
    reraise=True,
)
def _write_attempt(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with write_transaction(engine) as conn:
        return fn(conn)


def run_write(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run `fn` in a write transaction, re-running it whole on serialization failure or deadlock."""
    return _write_attempt(engine, fn)
