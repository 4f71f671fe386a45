"""Writes collected while no transaction is open (during a slow lookup), run later inside the
caller's transaction, so bookkeeping rides along with the write that has to happen anyway instead of
costing a transaction of its own (SQLite has one writer at a time)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

WriteOp = Callable[[Connection], None]


class DeferredWrites:
    def __init__(self) -> None:
        self._ops: list[WriteOp] = []

    def add(self, op: WriteOp) -> None:
        self._ops.append(op)

    def write(self, conn: Connection) -> None:
        """Run every kept write in `conn`'s transaction. Kept, not consumed: a transaction that is
        retried whole runs them again."""
        for op in self._ops:
            op(conn)

    def __len__(self) -> int:
        return len(self._ops)
