"""Writes collected while no transaction is open (during a slow lookup), run later inside the
caller's transaction, so bookkeeping rides along with the write that has to happen anyway instead of
costing a transaction of its own (SQLite has one writer at a time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection, Table, insert

WriteOp = Callable[[Connection], None]


class DeferredWrites:
    def __init__(self) -> None:
        self._ops: list[WriteOp] = []
        self._rows: dict[Table, list[dict]] = {}  # plain inserts: merged across a batch (write_all)

    def add(self, op: WriteOp) -> None:
        self._ops.append(op)

    def add_rows(self, table: Table, rows: Iterable[dict]) -> None:
        self._rows.setdefault(table, []).extend(rows)

    def __len__(self) -> int:
        return len(self._ops) + sum(len(rows) for rows in self._rows.values())


def write_all(conn: Connection, many: Iterable[DeferredWrites]) -> None:
    """The writes of many lookups in `conn`'s transaction: each table's plain inserts as one statement,
    then the other writes in the order they were kept. Kept, not consumed: a transaction that is
    retried whole runs them again."""
    many = list(many)
    rows: dict[Table, list[dict]] = {}
    for deferred in many:
        for table, table_rows in deferred._rows.items():
            rows.setdefault(table, []).extend(table_rows)
    for table, table_rows in rows.items():
        conn.execute(insert(table), table_rows)
    for deferred in many:
        for op in deferred._ops:
            op(conn)
