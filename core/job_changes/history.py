"""Employment history: one row per stint of a person at a company (shared: no team, no contributor)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Connection, insert, select, update

from storage.models import EmploymentHistory

_H = EmploymentHistory.__table__


class JobEvidence(StrEnum):
    TWO_SOURCES = "two_sources"  # two independent contributors put the person at the new company
    VERIFIED_EMAIL = "verified_email"  # our SMTP verifier accepted their email at the new company's domain
    FIRST_KNOWN = "first_known"  # the employer Tributary knew before the first recorded move


def record_move_in(
    conn: Connection,
    person_id: int,
    old_company_id: int | None,
    new_company_id: int,
    evidence: JobEvidence,
    now: datetime,
) -> int | None:
    """Close the person's current stint and open one at the new company; returns the new stint's id
    (None when the person already is at that company: nothing moved). The first move of a person
    also records the stint it ends (from_on unknown)."""
    today: date = now.date()
    current = conn.execute(
        select(_H.c.id, _H.c.company_id).where(_H.c.person_id == person_id, _H.c.to_on.is_(None)).with_for_update()
    ).all()
    if any(row.company_id == new_company_id for row in current) or (not current and old_company_id == new_company_id):
        return None
    if current:
        conn.execute(update(_H).where(_H.c.id.in_([r.id for r in current])).values(to_on=today))
    elif old_company_id is not None:
        _insert(conn, person_id, old_company_id, None, today, JobEvidence.FIRST_KNOWN, now)
    # A person with no known employer before gains one: that is their first known stint, not a move.
    moved = bool(current) or old_company_id is not None
    return _insert(
        conn, person_id, new_company_id, today if moved else None, None,
        JobEvidence(evidence) if moved else JobEvidence.FIRST_KNOWN, now,
    )  # fmt: skip


def _insert(
    conn: Connection,
    person_id: int,
    company_id: int,
    from_on: date | None,
    to_on: date | None,
    evidence: JobEvidence,
    now: datetime,
) -> int:
    return conn.execute(
        insert(_H)
        .values(
            person_id=person_id,
            company_id=company_id,
            from_on=from_on,
            to_on=to_on,
            evidence=evidence.value,
            recorded_at=now,
        )
        .returning(_H.c.id)
    ).scalar_one()


__all__ = ["JobEvidence", "record_move_in"]
