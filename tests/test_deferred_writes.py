"""Deferred writes on both databases: a batch's rows land in the caller's transaction, by COPY on
PostgreSQL where the values allow it and by executemany otherwise, with the same result either way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Date, DateTime, Engine, Integer, MetaData, String, Table, select
from sqlalchemy.exc import IntegrityError

from storage.db import run_write
from storage.deferred_writes import DeferredWrites, _copyable, write_all

_META = MetaData()
_ROWS = Table(
    "deferred_write_probe",
    _META,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("n", Integer, nullable=False),
    Column("day", Date),
    Column("at", DateTime(timezone=True)),
    Column("tags", JSON),
    Column("note", String(40), default="from python"),
)
AT = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def probe(engine: Engine) -> Iterator[Table]:
    _META.create_all(engine)
    yield _ROWS
    _META.drop_all(engine)


def _stored(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(_ROWS).order_by(_ROWS.c.id)).all()
    return [(r.name, r.n, r.day, r.at.astimezone(UTC) if r.at else None, r.tags, r.note) for r in rows]


def _plain(name: str, n: int) -> dict:
    # Every column but the key and the JSON one: what `_copyable` accepts (source-call rows are such).
    return dict(name=name, n=n, day=date(2026, 12, 1), at=AT, note="typed")


def test_rows_of_many_lookups_land_in_one_transaction_in_order(engine: Engine, probe: Table) -> None:
    first, second = DeferredWrites(), DeferredWrites()
    first.add_rows(probe, [_plain("a", 1), _plain("b", 2)])
    second.add_rows(probe, [_plain("c", 3)])
    run_write(engine, lambda conn: write_all(conn, [first, second]))
    assert _stored(engine) == [
        (name, n, date(2026, 12, 1), AT, None, "typed") for name, n in (("a", 1), ("b", 2), ("c", 3))
    ]


def test_a_refused_row_is_the_databases_error_as_sqlalchemy_raises_it(engine: Engine, probe: Table) -> None:
    # On PostgreSQL the COPY's error is raised as SQLAlchemy's, so callers (and the retry of a
    # deadlocked transaction) handle it like any statement's.
    deferred = DeferredWrites()
    deferred.add_rows(probe, [_plain("a", 1), {**_plain("b", 2), "n": None}])  # n is NOT NULL
    with pytest.raises(IntegrityError):
        run_write(engine, lambda conn: write_all(conn, [deferred]))
    assert _stored(engine) == []


def test_a_failed_transaction_leaves_none_of_its_rows(engine: Engine, probe: Table) -> None:
    deferred = DeferredWrites()
    deferred.add_rows(probe, [_plain("a", 1)])

    def op(conn) -> None:
        write_all(conn, [deferred])
        raise RuntimeError("the settle failed after the writes")

    with pytest.raises(RuntimeError):
        run_write(engine, op)
    assert _stored(engine) == []


def test_rows_that_need_sqlalchemy_go_through_it(engine: Engine, probe: Table) -> None:
    # A JSON column (even None: SQLAlchemy stores JSON null, COPY would store NULL), a left-out
    # column with a Python default, values SQLAlchemy would convert: executemany, as before.
    json_row = {**_plain("json", 1), "tags": ["x", "y"]}
    defaulted = {k: v for k, v in _plain("defaulted", 2).items() if k != "note"}
    assert _copyable(probe, [_plain("a", 1)])
    for rows in (
        [json_row],
        [{**_plain("a", 1), "tags": None}],
        [defaulted],
        [{**_plain("naive", 3), "at": AT.replace(tzinfo=None)}],
        [{**_plain("bool", 1), "n": True}],
        [{**_plain("decimal", 1), "n": Decimal(1)}],
        [{**_plain("datetime as a date", 1), "day": AT}],
        [_plain("a", 1), {**_plain("b", 2), "extra": 1}],
    ):
        assert not _copyable(probe, rows), rows
    for rows in ([json_row], [defaulted]):
        deferred = DeferredWrites()
        deferred.add_rows(probe, rows)
        run_write(engine, lambda conn, d=deferred: write_all(conn, [d]))
    assert sorted(_stored(engine)) == [
        ("defaulted", 2, date(2026, 12, 1), AT, None, "from python"),
        ("json", 1, date(2026, 12, 1), AT, ["x", "y"], "typed"),
    ]
