"""Telling a team that a contact moved: once per (team contact, new stint), to the contact's owner.

Who is told: the owner, else the member who saved the contact; a contact with neither gets its
notice row (so it is not looked at again) but no Slack message. Contacts saved after the move are
not told: the team saved the person at the new company. The notice row and the outbox notice are
written in one transaction (inside the caller's), so a notice is never lost and never doubled:
the unique (team contact, stint) key makes a second detection a no-op, even two at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.outbox import JobChangeAlert, NoticeKind, add_notice
from storage.models import Company, DataRequest, EmailAddress, EmploymentHistory, JobChangeNotice, Person, TeamContact
from storage.models.enums import DataKind, EmailStatus
from storage.timeutil import as_utc

_H = EmploymentHistory.__table__
_N = JobChangeNotice.__table__
_TC = TeamContact.__table__
_C = Company.__table__
_P = Person.__table__
_DR = DataRequest.__table__
_E = EmailAddress.__table__


@dataclass(frozen=True)
class _Stint:
    id: int
    person_id: int
    full_name: str
    from_on: str
    recorded_at: datetime
    new_company: str
    new_domain: str | None
    old_company: str | None


def notify_in(conn: Connection, employment_id: int, now: datetime) -> int:
    """Notices for every team contact of the stint's person not yet told of it. Returns how many."""
    stint = _stint(conn, employment_id)
    if stint is None:
        return 0
    contacts = conn.execute(
        select(_TC.c.id, _TC.c.team_id, _TC.c.owner_member_id, _TC.c.created_by_member_id)
        .where(_TC.c.person_id == stint.person_id, _TC.c.created_at <= stint.recorded_at)
        .order_by(_TC.c.id)
    ).all()
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    told = 0
    for contact in contacts:
        member_id = contact.owner_member_id or contact.created_by_member_id
        notice_id = conn.execute(
            insert(_N)
            .values(
                team_id=contact.team_id,
                team_contact_id=contact.id,
                employment_id=stint.id,
                member_id=member_id,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["team_contact_id", "employment_id"])
            .returning(_N.c.id)
        ).scalar()
        if notice_id is None:
            continue  # told before
        told += 1
        if member_id is None:
            continue
        alert = _alert(conn, stint, contact.id, contact.team_id)
        outbox_id = add_notice(
            conn, NoticeKind.JOB_CHANGE, team_id=contact.team_id, member_id=member_id, payload=alert, now=now
        )
        conn.execute(update(_N).where(_N.c.id == notice_id).values(outbox_notice_id=outbox_id))
    return told


def _stint(conn: Connection, employment_id: int) -> _Stint | None:
    row = conn.execute(
        select(_H.c.id, _H.c.person_id, _H.c.from_on, _H.c.recorded_at, _P.c.full_name, _C.c.name, _C.c.domain)
        .join(_P, _P.c.id == _H.c.person_id)
        .join(_C, _C.c.id == _H.c.company_id)
        .where(_H.c.id == employment_id, _H.c.from_on.is_not(None))
    ).one_or_none()
    if row is None:
        return None
    old = conn.execute(
        select(_C.c.name)
        .join(_H, _H.c.company_id == _C.c.id)
        .where(_H.c.person_id == row.person_id, _H.c.id != row.id, _H.c.to_on.is_not(None), _H.c.to_on <= row.from_on)
        .order_by(_H.c.to_on.desc(), _H.c.id.desc())
        .limit(1)
    ).scalar()
    when = as_utc(row.recorded_at)
    return _Stint(row.id, row.person_id, row.full_name, row.from_on.isoformat(), when, row.name, row.domain, old)


def _alert(conn: Connection, stint: _Stint, contact_id: int, team_id: int) -> JobChangeAlert:
    old_email = conn.execute(
        select(_E.c.address)
        .select_from(_DR)
        .join(_E, and_(_E.c.address == _DR.c.email_address, _E.c.person_id == _DR.c.person_id))
        .where(
            _DR.c.team_id == team_id,
            _DR.c.person_id == stint.person_id,
            _DR.c.kind == DataKind.EMAIL.value,
            _E.c.status == EmailStatus.UPDATE_REQUIRED.value,
        )
        .limit(1)
    ).scalar()
    moved = (
        f"moved from {stint.old_company} to {stint.new_company}"
        if stint.old_company
        else (f"moved to {stint.new_company}")
    )
    text = f"{stint.full_name} {moved} ({stint.from_on})." + (f" {old_email} needs an update." if old_email else "")
    return JobChangeAlert(
        team_contact_id=contact_id,
        person_id=stint.person_id,
        full_name=stint.full_name,
        old_company=stint.old_company,
        new_company=stint.new_company,
        new_domain=stint.new_domain,
        changed_on=stint.from_on,
        old_email=old_email,
        text=text,
    )


__all__ = ["notify_in"]
