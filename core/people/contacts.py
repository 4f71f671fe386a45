"""Writing contact records (people, companies, emails, phones) into the shared tables.

Used by the demo seed and tests today; contributions and providers will write through it too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.errors import InvalidInput
from core.people.name_index import index_company_in, index_person_in
from core.people.resolve import canonical_linkedin_url
from core.people.types import EmailFinding, PhoneFinding
from storage.db import run_write
from storage.models import Company, EmailAddress, Person, Phone
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import utcnow

_COMPANY = Company.__table__
_PERSON = Person.__table__
_EMAIL = EmailAddress.__table__
_PHONE = Phone.__table__


@dataclass(frozen=True)
class NewEmail:
    address: str
    status: EmailStatus
    score: int = 0
    checked_at: datetime | None = None


@dataclass(frozen=True)
class NewPhone:
    e164: str
    kind: PhoneKind
    status: PhoneStatus = PhoneStatus.VALID
    line_type: str | None = None


@dataclass(frozen=True)
class NewPerson:
    full_name: str
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    domain: str | None = None
    country_code: str | None = None
    linkedin_url: str | None = None
    location: str | None = None
    emails: list[NewEmail] = field(default_factory=list)
    phones: list[NewPhone] = field(default_factory=list)


def company_id_in(conn: Connection, name: str, domain: str | None, country_code: str | None = None) -> int:
    if domain:
        found = conn.execute(select(_COMPANY.c.id).where(_COMPANY.c.domain == domain.lower())).scalar()
        if found is not None:
            return found
    else:
        found = conn.execute(select(_COMPANY.c.id).where(_COMPANY.c.name == name, _COMPANY.c.domain.is_(None))).scalar()
        if found is not None:
            return found
    company_id = conn.execute(
        insert(_COMPANY)
        .values(name=name, domain=domain.lower() if domain else None, country_code=country_code, created_at=utcnow())
        .returning(_COMPANY.c.id)
    ).scalar_one()
    index_company_in(conn, company_id, name)
    return company_id


def add_person_in(conn: Connection, person: NewPerson) -> int:
    if not person.full_name.strip():
        raise InvalidInput("person: full name must not be empty")
    linkedin = None
    if person.linkedin_url:
        linkedin = canonical_linkedin_url(person.linkedin_url)
        if linkedin is None:
            raise InvalidInput(f"person: {person.linkedin_url!r} is not a LinkedIn profile URL")
    company_id = company_id_in(conn, person.company, person.domain, person.country_code) if person.company else None
    now = utcnow()
    person_id = conn.execute(
        insert(_PERSON)
        .values(
            full_name=person.full_name.strip(),
            first_name=person.first_name,
            last_name=person.last_name,
            title=person.title,
            company_id=company_id,
            linkedin_url=linkedin,
            location=person.location,
            updated_at=now,
        )
        .returning(_PERSON.c.id)
    ).scalar_one()
    index_person_in(conn, person_id, person.full_name, person.first_name, person.last_name)
    if person.emails:
        conn.execute(
            insert(_EMAIL),
            [
                dict(
                    person_id=person_id,
                    address=e.address.lower(),
                    status=e.status.value,
                    score=e.score,
                    reasons=[],
                    checked_at=e.checked_at,
                    created_at=now,
                )
                for e in person.emails
            ],
        )
    if person.phones:
        conn.execute(insert(_PHONE), phone_rows(person_id, person.phones, now))
    return person_id


def add_person(engine: Engine, person: NewPerson) -> int:
    return run_write(engine, lambda conn: add_person_in(conn, person))


# --- What the waterfall found outside the contributor database, written back (was found_contacts) ---
# Writing what the waterfall found outside the contributor database back into the shared tables,
# so the next lookup of the same person is answered by the database.
#
# What is written (the privacy and corroboration rules of DESIGN.md):
# - Emails only when our own verifier verified them (the pattern finder's hits, providers' emails
#   that passed the validation step). A vendor's unchecked claim or a catch-all guess is not written:
#   shared data must be verified before it enters.
# - Phones found by providers, with their libphonenumber status and kind. The lead's decision:
#   provider data may be stored in shared tables (it comes from no customer, so it cannot point back
#   to one).
# - Never a team id or member id: these rows are shared by every team.
# An address already owned by another person is left alone (one address, one person).

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
        rows = phone_rows(person_id, phones, now)
        conn.execute(insert(_P).on_conflict_do_nothing(index_elements=list(PHONE_KEY)), rows)


PHONE_KEY = ("person_id", "e164")  # a person's number is stored once: a second finding is skipped


def phone_rows(person_id: int, phones: Sequence[PhoneFinding | NewPhone], now: datetime) -> list[dict]:
    """The `phone` rows of found phones (inserted skipping PHONE_KEY duplicates)."""
    return [
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
    ]
