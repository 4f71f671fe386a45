"""Folded name keys for people and companies (person_name_key, company_name_key), so matching and
search find "José Müller at Acme, Inc." through an index instead of scanning names.

Written whenever core/people/contacts.py creates a person or a company; `reindex_name_keys` fills them for
rows that were written another way (or before the keys existed)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, insert, select

from core.normalize.companies import company_key
from core.normalize.names import parse_name
from storage.db import read_transaction, run_write
from storage.limits import MAX_NAME_CHARS, MAX_NAME_PART_CHARS
from storage.models import Company, CompanyNameKey, Person, PersonNameKey

_PERSON = Person.__table__
_COMPANY = Company.__table__
_PKEY = PersonNameKey.__table__
_CKEY = CompanyNameKey.__table__
REINDEX_BATCH = 1000


def _person_row(person_id: int, full_name: str | None, first_name: str | None, last_name: str | None) -> dict:
    name = parse_name(full_name, first_name, last_name)
    return dict(
        person_id=person_id,
        first_key=name.first_key[:MAX_NAME_PART_CHARS],
        last_key=name.last_key[:MAX_NAME_PART_CHARS],
        full_key=name.full_key[:MAX_NAME_CHARS],
    )


def index_person_in(
    conn: Connection, person_id: int, full_name: str | None, first_name: str | None, last_name: str | None
) -> None:
    conn.execute(delete(_PKEY).where(_PKEY.c.person_id == person_id))
    conn.execute(insert(_PKEY).values(**_person_row(person_id, full_name, first_name, last_name)))


def index_company_in(conn: Connection, company_id: int, name: str) -> None:
    conn.execute(delete(_CKEY).where(_CKEY.c.company_id == company_id))
    conn.execute(insert(_CKEY).values(company_id=company_id, name_key=company_key(name)[:MAX_NAME_CHARS]))


def reindex_name_keys(engine: Engine) -> int:
    """Add the missing keys (idempotent). Returns how many rows were indexed."""
    done = 0
    while True:
        with read_transaction(engine) as conn:
            people = conn.execute(
                select(_PERSON.c.id, _PERSON.c.full_name, _PERSON.c.first_name, _PERSON.c.last_name)
                .where(~select(_PKEY.c.person_id).where(_PKEY.c.person_id == _PERSON.c.id).exists())
                .limit(REINDEX_BATCH)
            ).all()
            companies = conn.execute(
                select(_COMPANY.c.id, _COMPANY.c.name)
                .where(~select(_CKEY.c.company_id).where(_CKEY.c.company_id == _COMPANY.c.id).exists())
                .limit(REINDEX_BATCH)
            ).all()
        if not people and not companies:
            return done
        rows_p = [_person_row(r.id, r.full_name, r.first_name, r.last_name) for r in people]
        rows_c = [dict(company_id=r.id, name_key=company_key(r.name)[:MAX_NAME_CHARS]) for r in companies]

        def write(conn: Connection, rows_p: list[dict] = rows_p, rows_c: list[dict] = rows_c) -> None:
            if rows_p:
                conn.execute(insert(_PKEY), rows_p)
            if rows_c:
                conn.execute(insert(_CKEY), rows_c)

        run_write(engine, write)
        done += len(rows_p) + len(rows_c)
