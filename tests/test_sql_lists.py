"""`one_of` selects exactly what `in_()` selects, on both databases, and on PostgreSQL its statement
is the same text whatever the list's length (one array parameter)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core.accounts import Accounts
from storage.db import read_transaction
from storage.models import Team
from storage.sql_lists import one_of

_TEAM = Team.__table__


@pytest.mark.parametrize("pick", [[], [0], [0, 2], [1, 2, 3, 4], "names"])
def test_one_of_selects_what_in_selects(engine: Engine, pick) -> None:
    accounts = Accounts(engine)
    accounts.create_plan("zero", monthly_credits=0)
    ids = [accounts.create_team(f"t{i}", plan="zero").id for i in range(5)]
    with read_transaction(engine) as conn:
        if pick == "names":
            column, values = _TEAM.c.name, ["t1", "t3", "nobody"]
        else:
            column, values = _TEAM.c.id, [ids[i] for i in pick] + [10**9]
        expected = conn.execute(select(_TEAM.c.id).where(column.in_(values)).order_by(_TEAM.c.id)).scalars().all()
        got = conn.execute(select(_TEAM.c.id).where(one_of(conn, column, values)).order_by(_TEAM.c.id)).scalars().all()
        assert got == expected
        assert len(got) == (2 if pick == "names" else len(pick))


def test_on_postgresql_the_statement_does_not_grow_with_the_list(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no arrays: one_of is IN there")
    with read_transaction(engine) as conn:
        short = str(select(_TEAM.c.id).where(one_of(conn, _TEAM.c.id, [1])).compile(conn))
        long = str(select(_TEAM.c.id).where(one_of(conn, _TEAM.c.id, range(500))).compile(conn))
    assert short == long and "ANY" in long
