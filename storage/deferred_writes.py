"""Writes collected while no transaction is open (during a slow lookup), run later inside the
caller's transaction, so bookkeeping rides along with the write that has to happen anyway instead of
costing a transaction of its own (SQLite has one writer at a time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
        conn.execute(_insert(conn, table, conflict_columns), table_rows)
    for deferred in many:
        for op in deferred._ops:
            op(conn)


def _insert(conn: Connection, table: Table, conflict_columns: tuple[str, ...]):
    if not conflict_columns:
        return insert(table)
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
