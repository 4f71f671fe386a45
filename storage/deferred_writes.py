"""Writes collected while no transaction is open (during a slow lookup), run later inside the
caller's transaction, so bookkeeping rides along with the write that has to happen anyway instead of
costing a transaction of its own (SQLite has one writer at a time).

On PostgreSQL a table's plain inserts go in by COPY when every value is already what the column
stores (text, numbers, aware datetimes): a job writes ~8 source-call rows per person, and COPY costs a
third of the CPU of an executemany, which runs SQLAlchemy's per-row parameter processing and one
pipelined statement per row."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

import psycopg
from sqlalchemy import (
    BIGINT,
    DATE,
    INTEGER,
    TEXT,
    TIMESTAMP,
    VARCHAR,
    BigInteger,
    Connection,
    Date,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

WriteOp = Callable[[Connection], None]
# Rows of one table, and the unique columns whose duplicates are skipped (empty: a plain insert).
_RowsKey = tuple[Table, tuple[str, ...]]


class DeferredWrites:
    def __init__(self) -> None:
        self._ops: list[WriteOp] = []
        self._rows: dict[_RowsKey, list[dict]] = {}  # inserts: merged across a batch (write_all)

    def add(self, op: WriteOp) -> None:
        self._ops.append(op)

    def add_rows(self, table: Table, rows: Iterable[dict], *, skip_conflicts_on: tuple[str, ...] = ()) -> None:
        """Rows to insert; with `skip_conflicts_on`, a row whose key is already there is skipped
        (ON CONFLICT DO NOTHING on those unique columns)."""
        self._rows.setdefault((table, skip_conflicts_on), []).extend(rows)

    def __len__(self) -> int:
        return len(self._ops) + sum(len(rows) for rows in self._rows.values())


def write_all(conn: Connection, many: Iterable[DeferredWrites]) -> None:
    """The writes of many lookups in `conn`'s transaction: each table's inserts as one statement,
    then the other writes in the order they were kept. Kept, not consumed: a transaction that is
    retried whole runs them again."""
    many = list(many)
    rows: dict[_RowsKey, list[dict]] = {}
    for deferred in many:
        for key, table_rows in deferred._rows.items():
            rows.setdefault(key, []).extend(table_rows)
    for (table, conflict_columns), table_rows in rows.items():
        if not conflict_columns and conn.dialect.name == "postgresql" and _copyable(table, table_rows):
            _copy(conn, table, table_rows)
        else:
            conn.execute(_insert(conn, table, conflict_columns), table_rows)
    for deferred in many:
        for op in deferred._ops:
            op(conn)


def _insert(conn: Connection, table: Table, conflict_columns: tuple[str, ...]):
    if not conflict_columns:
        return insert(table)
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def _copyable(table: Table, rows: Sequence[dict]) -> bool:
    """Rows COPY can take as they are: the same columns in every row, none left out that SQLAlchemy
    would fill from a Python-side default, and every value one that SQLAlchemy would send unchanged
    for its column's type (text, integers, dates, aware datetimes, NULL)."""
    columns = rows[0].keys()
    takes = _copy_types(table)
    if any(name not in takes for name in columns):
        return False
    if any(c.name not in columns and c.default is not None and not c.primary_key for c in table.columns):
        return False
    for row in rows:
        if row.keys() != columns:
            return False
        for name, value in row.items():
            if value is None:
                continue
            if type(value) not in takes[name] or (type(value) is datetime and value.tzinfo is None):
                return False  # a naive datetime would be read in the session's time zone
    return True


@functools.cache
def _copy_types(table: Table) -> dict[str, tuple[type, ...]]:
    """The columns COPY may fill, with the exact Python types they take as they are; JSON, enums,
    booleans and any other type SQLAlchemy converts are left to executemany."""
    takes: dict[str, tuple[type, ...]] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, UTCDateTime) or (type(kind) in (DateTime, TIMESTAMP) and kind.timezone):
            takes[column.name] = (datetime,)
        elif isinstance(kind, AutoString) or type(kind) in (String, VARCHAR, Text, TEXT):
            takes[column.name] = (str,)
        elif type(kind) in (Integer, BigInteger, SmallInteger, INTEGER, BIGINT):
            takes[column.name] = (int,)
        elif type(kind) in (Date, DATE):
            takes[column.name] = (date,)
    return takes


def _copy(conn: Connection, table: Table, rows: Sequence[dict]) -> None:
    """The rows by COPY, on the connection (and in the transaction) of `conn`."""
    columns = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    target = f"{conn.dialect.identifier_preparer.format_table(table)} ({', '.join(quote(c) for c in columns)})"
    try:
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    except psycopg.Error as exc:  # as SQLAlchemy's error, so a deadlock is retried like any statement's
        raise DBAPIError.instance(f"COPY {target}", None, exc, psycopg.Error, dialect=conn.dialect) from exc
