"""Finding the person a reference names: an id, an email address or a LinkedIn profile URL."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select

from core.errors import InvalidInput, NotFound
from core.normalize.linkedin import canonical_linkedin_url
from core.sources.base import PersonInfo
from storage.db import read_transaction
from storage.models import Company, EmailAddress, Person

_PERSON = Person.__table__
_COMPANY = Company.__table__
_EMAIL = EmailAddress.__table__
MAX_REF_LENGTH = 320
MAX_PERSON_ID = 2**31 - 1  # person.id is a 32-bit INTEGER: a larger id names nobody (PostgreSQL refuses it)


def resolve_person(engine: Engine, ref: str | int) -> PersonInfo:
    with read_transaction(engine) as conn:
        return resolve_person_in(conn, ref)


def resolve_people_in(conn: Connection, person_ids: list[int]) -> dict[int, PersonInfo]:
    """Many people by id in one read; ids that name nobody are left out."""
    rows = conn.execute(_person_select().where(_PERSON.c.id.in_(sorted({int(i) for i in person_ids})))).all()
    return {row.id: _person_info(row) for row in rows}


def resolve_person_in(conn: Connection, ref: str | int) -> PersonInfo:
    text = str(ref).strip()
    if not text:
        raise InvalidInput("person: empty reference (give an id, an email address or a LinkedIn URL)")
    if len(text) > MAX_REF_LENGTH:
        raise InvalidInput(f"person: reference longer than {MAX_REF_LENGTH} characters")
    stmt = _person_select()
    if text.isdigit():
        if int(text) > MAX_PERSON_ID:
            raise NotFound(f"no person matches {text!r}")
        stmt = stmt.where(_PERSON.c.id == int(text))
    elif "@" in text:
        person_id = select(_EMAIL.c.person_id).where(func.lower(_EMAIL.c.address) == text.lower()).scalar_subquery()
        stmt = stmt.where(_PERSON.c.id == person_id)
    elif (url := canonical_linkedin_url(text)) is not None:
        stmt = stmt.where(_PERSON.c.linkedin_url == url)
    else:
        raise InvalidInput(f"person: {text!r} is not an id, an email address or a LinkedIn profile URL")
    row = conn.execute(stmt).one_or_none()
    if row is None:
        raise NotFound(f"no person matches {text!r}")
    return _person_info(row)


def _person_select():
    return select(_PERSON, _COMPANY.c.name.label("company"), _COMPANY.c.domain, _COMPANY.c.country_code).outerjoin(
        _COMPANY, _COMPANY.c.id == _PERSON.c.company_id
    )


def _person_info(row) -> PersonInfo:
    return PersonInfo(
        id=row.id,
        full_name=row.full_name,
        first_name=row.first_name,
        last_name=row.last_name,
        title=row.title,
        company=row.company,
        domain=row.domain,
        location=row.location,
        linkedin_url=row.linkedin_url,
        country_code=row.country_code,
    )
