"""`column IN (values)` for long lists of ids or keys, written so the statement's text does not grow
with the list.

SQLAlchemy expands `in_()` into one placeholder per value, so each length is a new statement, and
psycopg re-parses any statement with more than 50 parameters on every execution (it caches only
shorter ones): a tenth of an enrichment worker's CPU went there. On PostgreSQL the list travels as
one array parameter (`= ANY(...)`); SQLite has no arrays and keeps `IN`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, Connection, any_, bindparam
from sqlalchemy.sql.elements import ColumnElement


def one_of(conn: Connection, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column` equals one of `values` (none: false), for a statement run on `conn`."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
