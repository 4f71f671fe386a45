"""Bulk updates and inserts on both databases: one statement of JSON records on PostgreSQL, an executemany
on SQLite, and on both exactly what one statement per row would have written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, DateTime, Engine, Integer, MetaData, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from storage.bulk_rows import BulkInsert, BulkUpdate
from storage.db import run_write

_META = MetaData()
_T = Table(
    "bulk_rows_probe",
    _META,
    Column("id", Integer, primary_key=True),
    Column("team", Integer, nullable=False),
    Column("name", AutoString(40), nullable=True),
    Column("n", Integer, nullable=True),
    Column("at", UTCDateTime(), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("outcome", JSON(none_as_null=True), nullable=True),
    Column("stamp", DateTime(timezone=True), nullable=True),
)
AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
_SET = ["name", "n", "at", "tags", "outcome"]
_UPDATE = BulkUpdate(_T, match=["id"], columns=_SET, fixed={"stamp": AT}, where=[_T.c.team == 1])
_INSERT = BulkInsert(_T, columns=["id", "team", *_SET])
_INSERT_IGNORE = BulkInsert(_T, columns=["id", "team", *_SET], skip_conflicts_on=["id"])


@pytest.fixture
def probe(engine: Engine) -> Iterator[Table]:
    _META.create_all(engine)
    yield _T
    _META.drop_all(engine)


def _stored(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        # SQL NULL and JSON null read back alike (None): which one is stored is asked in SQL.
        nulls = (_T.c.tags.is_(None).label("tags_null"), _T.c.outcome.is_(None).label("outcome_null"))
        rows = conn.execute(select(_T, *nulls).order_by(_T.c.id)).all()
    return [
        (r.id, r.team, r.name, r.n, r.at.astimezone(UTC) if r.at else None, r.tags, r.outcome,
         r.stamp.astimezone(UTC) if r.stamp else None, r.tags_null, r.outcome_null)
        for r in rows
    ]


# Text that JSON, an array literal or a CSV would trip on; JSON with nesting and nulls; any time zone.
# No NUL (neither database's text takes it) and no lone surrogate (not UTF-8).
_chars = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_text = st.one_of(
    st.none(), st.text(_chars, max_size=12), st.sampled_from(['a,"b"}', "{NULL}", "\\", "é ☃", "NULL", ""])
)
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)
_when = st.one_of(
    st.none(),
    st.builds(
        lambda minutes, offset: (AT + timedelta(minutes=minutes)).astimezone(timezone(timedelta(minutes=offset))),
        st.integers(-10**6, 10**6), st.integers(-600, 600),
    ),
)
_values = st.fixed_dictionaries(
    {"name": _text, "n": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), "at": _when,
     "tags": _json, "outcome": st.one_of(st.none(), _json)}
)


def _expected(row: dict) -> tuple:
    """What one plain statement per row stores: JSON null for a None tag (`tags` is plain JSON), SQL
    NULL for a None outcome (none_as_null)."""
    return (
        row["id"], row["team"], row["name"], row["n"], row["at"], row["tags"], row["outcome"], row.get("stamp"),
        False, row["outcome"] is None,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_values, min_size=1, max_size=12), st.data())
def test_an_update_writes_what_one_statement_per_row_would(engine: Engine, probe: Table, values, data) -> None:
    start = [dict(id=i, team=1 if i % 3 else 2, name="old", n=0, at=AT, tags=[], outcome=None) for i in range(20)]
    run_write(engine, lambda conn: (conn.execute(delete(_T)), conn.execute(insert(_T), start)))
    ids = data.draw(st.lists(st.integers(0, 24), min_size=len(values), max_size=len(values), unique=True))
    rows = [{"id": i, **v} for i, v in zip(ids, values, strict=True)]
    run_write(engine, lambda conn: _UPDATE.run(conn, rows))
    expected = {r["id"]: {**r, "stamp": None} for r in start}
    for row in rows:
        # Only rows that exist and match the extra condition (team 1) change; the fixed value with them.
        if row["id"] in expected and expected[row["id"]]["team"] == 1:
            expected[row["id"]] = {**row, "team": 1, "stamp": AT}
    got = _stored(engine)
    assert got == [_expected(expected[i]) for i in sorted(expected)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_values, min_size=1, max_size=12), st.lists(st.integers(0, 8), min_size=12, max_size=12))
def test_an_insert_skipping_conflicts_keeps_the_first_row_of_each_key(engine, probe, values, ids) -> None:
    run_write(engine, lambda conn: conn.execute(delete(_T)))
    run_write(engine, lambda conn: _INSERT.run(conn, [dict(id=8, team=9, **values[0])]))
    rows = [dict(id=i, team=1, **v) for i, v in zip(ids, values, strict=False)]
    run_write(engine, lambda conn: _INSERT_IGNORE.run(conn, rows))
    expected = {8: dict(id=8, team=9, **values[0])}
    for row in rows:
        expected.setdefault(row["id"], row)
    assert _stored(engine) == [_expected(expected[i]) for i in sorted(expected)]


def test_a_plain_insert_refuses_a_duplicate_and_writes_nothing(engine: Engine, probe: Table) -> None:
    row = dict(id=1, team=1, name="a", n=1, at=AT, tags=[], outcome=None)
    with pytest.raises(IntegrityError):
        run_write(engine, lambda conn: _INSERT.run(conn, [row, {**row, "name": "b"}]))
    assert _stored(engine) == []


# The shape of a job's claim outcomes: matched on several columns, written only where none is yet.
_FIRST_OUTCOME = BulkUpdate(_T, match=["id", "team"], columns=["outcome"], where=[_T.c.outcome.is_(None)])


def test_an_update_matching_several_columns_leaves_rows_that_fail_any_condition(engine, probe) -> None:
    start = [
        dict(id=1, team=1, name="a", n=1, at=AT, tags=[], outcome=None),
        dict(id=2, team=1, name="b", n=2, at=AT, tags=[], outcome={"done": "before"}),  # already has one
        dict(id=3, team=2, name="c", n=3, at=AT, tags=[], outcome=None),  # another team
    ]
    run_write(engine, lambda conn: conn.execute(insert(_T), start))
    rows = [dict(id=1, team=1, outcome={"n": 1}), dict(id=2, team=1, outcome={"n": 2}), dict(id=3, team=1, outcome=[3])]
    run_write(engine, lambda conn: _FIRST_OUTCOME.run(conn, rows))
    assert [r[6] for r in _stored(engine)] == [{"n": 1}, {"done": "before"}, None]


def test_two_rows_for_one_table_row_are_refused(engine: Engine, probe: Table) -> None:
    # PostgreSQL's UPDATE ... FROM would apply one of them, SQLite's executemany the last: neither is asked for.
    with engine.connect() as conn, pytest.raises(ValueError, match="match the same id"):
        _UPDATE.run(conn, [dict(id=1, **_ONE), dict(id=1, **_ONE)])


_ONE = dict(name="a", n=1, at=AT, tags=[], outcome=None)


def test_a_naive_datetime_is_refused_on_both_databases(engine: Engine, probe: Table) -> None:
    row = dict(id=1, team=1, name="a", n=1, at=AT.replace(tzinfo=None), tags=[], outcome=None)
    with pytest.raises((ValueError, StatementError), match="naive"):
        run_write(engine, lambda conn: _INSERT.run(conn, [row]))
    assert _stored(engine) == []


def test_no_rows_run_no_statement(engine: Engine, probe: Table) -> None:
    statements: list[str] = []
    with engine.connect() as conn:
        from sqlalchemy import event

        event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        _UPDATE.run(conn, [])
        _INSERT.run(conn, [])
    assert statements == []


def test_a_column_without_a_record_form_is_refused_when_built() -> None:
    from sqlalchemy import Boolean

    other = Table("bulk_rows_bool", MetaData(), Column("id", Integer, primary_key=True), Column("flag", Boolean))
    with pytest.raises(TypeError, match="bulk_rows_bool.flag"):
        BulkInsert(other, columns=["id", "flag"])
