"""Team accounts follow people: a team that saves a contact, or whose contact moves to another
company, gets an account at that company (insert-or-ignore; the contact's owner, creator and source
carry over, the earliest contact first)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import Person, TeamAccount, TeamContact
from storage.sql_lists import one_of

_TA = TeamAccount.__table__
_TC = TeamContact.__table__
_P = Person.__table__
_COLUMNS = ["team_id", "company_id", "created_by_member_id", "owner_member_id", "source", "created_at"]


def save_accounts_of(
    conn: Connection, person_ids: Collection[int], now: datetime, team_ids: Collection[int] | None = None
) -> None:
    """Accounts for the companies of these people, in every team (or the given teams) that has them
    as contacts. One statement, whatever the number of people."""
    if not person_ids:
        return
    rows = (
        select(
            _TC.c.team_id, _P.c.company_id, _TC.c.created_by_member_id, _TC.c.owner_member_id, _TC.c.source,
            literal(now, _TA.c.created_at.type),
        )
        .join(_P, _P.c.id == _TC.c.person_id)
        .where(one_of(conn, _TC.c.person_id, person_ids), _P.c.company_id.is_not(None))
        .order_by(_TC.c.created_at, _TC.c.id)
    )  # fmt: skip
    if team_ids is not None:
        rows = rows.where(one_of(conn, _TC.c.team_id, team_ids))
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        insert(_TA).from_select(_COLUMNS, rows).on_conflict_do_nothing(index_elements=["team_id", "company_id"])
    )
