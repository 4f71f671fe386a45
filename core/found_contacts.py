"""Writing what the waterfall found outside the contributor database back into the shared tables,
so the next lookup of the same person is answered by the database.

What is written (the privacy and corroboration rules of DESIGN.md):
- Emails only when our own verifier verified them (the pattern finder's hits, providers' emails
  that passed the validation step). A vendor's unchecked claim or a catch-all guess is not written:
  shared data must be verified before it enters.
- Phones found by providers, with their libphonenumber status and kind. The lead's decision:
  provider data may be stored in shared tables (it comes from no customer, so it cannot point back
  to one).
- Never a team id or member id: these rows are shared by every team.
An address already owned by another person is left alone (one address, one person).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.sources.base import EmailFinding, PhoneFinding
from storage.db import run_write
from storage.models import EmailAddress, Phone
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES
from storage.timeutil import utcnow

_E = EmailAddress.__table__
_P = Phone.__table__


def storable_email(finding: EmailFinding) -> bool:
    return finding.status in CHARGEABLE_EMAIL_STATUSES and finding.checked_at is not None


def record_found(
    engine: Engine, person_id: int, email: EmailFinding | None, phones: Sequence[PhoneFinding] = ()
) -> None:
    if has_storable(email, phones):
        run_write(engine, lambda conn: record_found_in(conn, person_id, email, phones))


def has_storable(email: EmailFinding | None, phones: Sequence[PhoneFinding] = ()) -> bool:
    return bool(phones) or (email is not None and storable_email(email))


def record_found_in(
    conn: Connection, person_id: int, email: EmailFinding | None, phones: Sequence[PhoneFinding] = ()
) -> None:
    """`record_found` in the caller's transaction."""
    email = email if email is not None and storable_email(email) else None
    if email is None and not phones:
        return
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    now = utcnow()
    if email is not None:
        conn.execute(
            insert(_E)
            .values(
                person_id=person_id,
                address=email.address.lower(),
                status=email.status.value,
                score=email.score,
                reasons=[],
                checked_at=email.checked_at,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["address"])
        )
    if phones:
        conn.execute(
            insert(_P).on_conflict_do_nothing(index_elements=["person_id", "e164"]),
            [
                dict(
                    person_id=person_id,
                    e164=phone.e164,
                    kind=phone.kind.value,
                    line_type=phone.line_type,
                    status=phone.status.value,
                    checked_at=now,
                    created_at=now,
                )
                for phone in phones
            ],
        )
