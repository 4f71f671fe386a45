"""Many rows updated or inserted by one statement whose text does not depend on how many there are.

A job settles, claims and stores rows by the batch. An executemany runs SQLAlchemy's parameter
processing and one pipelined statement per row; on PostgreSQL the rows travel instead as ONE JSON
parameter, unpacked by `json_to_recordset` into a statement that is prepared once:

    UPDATE t SET a = v.a FROM json_to_recordset(:rows) AS v(id BIGINT, a TEXT) WHERE t.id = v.id
    INSERT INTO t (a, b) SELECT v.a, v.b FROM json_to_recordset(:rows) AS v(a TEXT, b BIGINT)
        ON CONFLICT (a) DO NOTHING

(JSON rather than one array per column: psycopg writes arrays element by element in Python, a
fifth of a settle's CPU; the JSON encoder is C.) SQLite keeps the executemany of the same statement.
Both take the same rows (mappings by column name) and write the same values: a JSON column's value
is serialised as the column would, and a naive datetime is refused, as SQLModel's UTCDateTime does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.type_api import TypeDecorator, TypeEngine
from sqlmodel.sql.sqltypes import UTCDateTime

Row = Mapping[str, Any]


def _record_type(column) -> TypeEngine:
    """The type a column's values have in the JSON records (cast back to the column's type on write)."""
    kind = column.type
    if isinstance(kind, JSON):
        return Text()  # the value's own JSON text, cast to JSON by the statement (JSON null stays JSON null)
    if isinstance(kind, UTCDateTime):
        return TIMESTAMP(timezone=True)
    if isinstance(kind, TypeDecorator):  # AutoString: a String underneath
        kind = kind.impl_instance
    if isinstance(kind, DateTime) and kind.timezone:
        return TIMESTAMP(timezone=True)
    if isinstance(kind, Integer):  # BigInteger and SmallInteger too
        return BigInteger()
    if isinstance(kind, String):  # AutoString, VARCHAR, TEXT
        return Text()
    raise TypeError(f"{column.table.name}.{column.name}: {kind!r} has no JSON record form here")


def _encoder(column) -> Callable[[Any], Any] | None:
    """How a column's value is written into the JSON records (None: as it is)."""
    kind = column.type
    if isinstance(kind, JSON):
        keep_null = getattr(kind, "none_as_null", False)
        return lambda v: None if v is None and keep_null else json.dumps(v)
    if isinstance(_record_type(column), TIMESTAMP):
        where = f"{column.table.name}.{column.name}"

        def stamp(v: Any) -> str | None:
            if v is None:
                return None
            if not isinstance(v, datetime) or v.utcoffset() is None:
                raise ValueError(f"{where}: a naive or non-datetime value {v!r}")
            return v.astimezone(UTC).isoformat()

        return stamp
    return None


def _from_records(table: Table, names: Sequence[str]):
    """`json_to_recordset(:rows) AS v(a TYPE, ...)`: the rows as one JSON parameter."""
    rows = cast(bindparam("rows", type_=Text), JSON)
    columns = [column(name, _record_type(table.c[name])) for name in names]
    return func.json_to_recordset(rows).table_valued(*columns).render_derived(name="v", with_types=True)


def _as_column(table: Table, v, name: str) -> ColumnElement[Any]:
    """v's value for a column, cast back where it travelled as another type."""
    return cast(v.c[name], table.c[name].type) if isinstance(table.c[name].type, JSON) else v.c[name]


@dataclass
class _Prepared:
    postgresql: Any
    sqlite: Any
    encoders: dict[str, Callable[[Any], Any]]  # the PostgreSQL records' columns that need one


@dataclass
class BulkUpdate:
    """UPDATE `table` SET `columns` (and `fixed` values) for each row, where the row's `match`
    columns equal the table's and the extra `where` conditions (on the table) hold."""

    table: Table
    match: Sequence[str]
    columns: Sequence[str]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    where: Sequence[ColumnElement[bool]] = ()

    def __post_init__(self) -> None:
        t = self.table
        names = [*self.match, *self.columns]
        v = _from_records(t, names)
        pg = (
            update(t)
            .where(*[t.c[m] == v.c[m] for m in self.match], *self.where)
            .values({**{c: _as_column(t, v, c) for c in self.columns}, **self.fixed})
        )
        lite = (
            update(t)
            .where(*[t.c[m] == bindparam(f"p_{m}", type_=t.c[m].type) for m in self.match], *self.where)
            .values({**{c: bindparam(f"p_{c}", type_=t.c[c].type) for c in self.columns}, **self.fixed})
        )
        self._prepared = _Prepared(pg, lite, _encoders(t, names))

    def run(self, conn: Connection, rows: Sequence[Row]) -> None:
        """Every row's update in one statement (PostgreSQL) or one executemany (SQLite). No two rows
        may name the same table row: PostgreSQL would apply one of them, SQLite the last."""
        keys = {tuple(row[m] for m in self.match) for row in rows}
        if len(keys) != len(rows):
            raise ValueError(f"{self.table.name}: two rows of one bulk update match the same {', '.join(self.match)}")
        if rows:
            _run(conn, self._prepared, [*self.match, *self.columns], rows)


@dataclass
class BulkInsert:
    """INSERT the rows into `table`; with `skip_conflicts_on`, a row whose unique key is already
    there (or earlier in the same rows) is skipped (ON CONFLICT DO NOTHING)."""

    table: Table
    columns: Sequence[str]
    skip_conflicts_on: Sequence[str] = ()

    def __post_init__(self) -> None:
        t, names = self.table, list(self.columns)
        v = _from_records(t, names)
        pg = pg_insert(t).from_select(names, select(*[_as_column(t, v, c) for c in names]).select_from(v))
        lite = (sqlite_insert(t) if self.skip_conflicts_on else insert(t)).values(
            {c: bindparam(f"p_{c}", type_=t.c[c].type) for c in names}
        )
        if self.skip_conflicts_on:
            pg = pg.on_conflict_do_nothing(index_elements=list(self.skip_conflicts_on))
            lite = lite.on_conflict_do_nothing(index_elements=list(self.skip_conflicts_on))
        self._prepared = _Prepared(pg, lite, _encoders(t, names))

    def run(self, conn: Connection, rows: Sequence[Row]) -> None:
        if rows:
            _run(conn, self._prepared, list(self.columns), rows)


def _encoders(table: Table, names: Sequence[str]) -> dict[str, Callable[[Any], Any]]:
    return {name: enc for name in names if (enc := _encoder(table.c[name])) is not None}


def _run(conn: Connection, prepared: _Prepared, names: list[str], rows: Sequence[Row]) -> None:
    if conn.dialect.name == "postgresql":
        encoders = prepared.encoders
        records = [{name: row[name] for name in names} for row in rows]
        if encoders:
            for record in records:
                for name, encode in encoders.items():
                    record[name] = encode(record[name])
        conn.execute(prepared.postgresql, {"rows": json.dumps(records)})
    else:
        conn.execute(prepared.sqlite, [{f"p_{name}": row[name] for name in names} for row in rows])
