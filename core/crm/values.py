"""What Tributary would put into a team's CRM for each linked person.

The firmographics anyone may see for free (title, company), what the team accessed (email, its live
status, office phone, mobile), and the job-change flag. An email or mobile the team has not accessed
is not here: it costs credits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, or_, select

from core.crm.fields import PushField
from storage.models import Company, DataRequest, EmailAddress, Person
from storage.models.enums import DataKind, DataRequestStatus

_P = Person.__table__
_C = Company.__table__
_DR = DataRequest.__table__
_E = EmailAddress.__table__
_SETTLED = (DataRequestStatus.CHARGED.value, DataRequestStatus.FREE.value)
CHUNK = 1000


def known_values(
    conn: Connection, team_id: int, person_ids: Sequence[int], moved: Collection[int]
) -> dict[int, dict[PushField, str]]:
    """{person id: {field: value}} for fields with a value; `moved`: people flagged as job changes."""
    out: dict[int, dict[PushField, str]] = {pid: {} for pid in person_ids}
    for i in range(0, len(person_ids), CHUNK):
        chunk = person_ids[i : i + CHUNK]
        for r in conn.execute(
            select(_P.c.id, _P.c.title, _C.c.name).outerjoin(_C, _C.c.id == _P.c.company_id).where(_P.c.id.in_(chunk))
        ):
            _put(out[r.id], PushField.TITLE, r.title)
            _put(out[r.id], PushField.COMPANY, r.name)
        requests = conn.execute(
            select(_DR.c.person_id, _DR.c.kind, _DR.c.email_address, _DR.c.office_phone, _DR.c.mobile_phones).where(
                _DR.c.team_id == team_id, _DR.c.person_id.in_(chunk), _DR.c.status.in_(_SETTLED)
            )
        ).all()
        addresses = sorted({r.email_address for r in requests if r.email_address})
        status = dict(conn.execute(select(_E.c.address, _E.c.status).where(_E.c.address.in_(addresses))).all())
        for r in requests:
            values = out[r.person_id]
            if r.kind == DataKind.EMAIL.value and r.email_address:
                _put(values, PushField.EMAIL, r.email_address)
                _put(values, PushField.EMAIL_STATUS, status.get(r.email_address))
                _put(values, PushField.PHONE, r.office_phone)
            elif r.kind == DataKind.MOBILE.value and r.mobile_phones:
                _put(values, PushField.MOBILE, r.mobile_phones[0])
    for pid in person_ids:
        if pid in moved:
            out[pid][PushField.JOB_CHANGE] = "true"
    return out


def people_with_news(conn: Connection, team_id: int, person_ids: Sequence[int], since: datetime) -> set[int]:
    """Of these people, those whose pushed values may have changed since then: the team accessed
    something, or the shared person, or one of their emails, changed (a re-check, a bounce)."""
    out: set[int] = set()
    for i in range(0, len(person_ids), CHUNK):
        chunk = person_ids[i : i + CHUNK]
        out.update(conn.execute(select(_DR.c.person_id).where(
            _DR.c.team_id == team_id, _DR.c.person_id.in_(chunk), _DR.c.settled_at >= since)).scalars())  # fmt: skip
        out.update(conn.execute(select(_P.c.id).where(_P.c.id.in_(chunk), _P.c.updated_at >= since)).scalars())
        out.update(conn.execute(select(_E.c.person_id).where(
            _E.c.person_id.in_(chunk), or_(_E.c.checked_at >= since, _E.c.created_at >= since))).scalars())  # fmt: skip
    return out


def _put(values: dict[PushField, str], field: PushField, value: str | None) -> None:
    if value:
        values[field] = str(value)
