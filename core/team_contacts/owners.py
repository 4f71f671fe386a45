"""Who hears about a contact: its owner in the team, else whoever paid for it, else the sender."""

from __future__ import annotations

from sqlalchemy import Connection, select

from storage.models import DataRequest, TeamContact

_TC = TeamContact.__table__
_DR = DataRequest.__table__


def notice_member(
    conn: Connection, team_id: int, person_id: int | None, data_request_id: int | None, fallback_member_id: int
) -> int:
    if person_id is not None:
        owner = conn.execute(
            select(_TC.c.owner_member_id).where(_TC.c.team_id == team_id, _TC.c.person_id == person_id)
        ).scalar()
        if owner is not None:
            return owner
    if data_request_id is not None:
        payer = conn.execute(
            select(_DR.c.member_id).where(_DR.c.id == data_request_id, _DR.c.team_id == team_id)
        ).scalar()
        if payer is not None:
            return payer
    return fallback_member_id
