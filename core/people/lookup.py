"""Finding the people a lookup names: by email, LinkedIn URL or id (exact), or by name and company
(core.people.matching's ranked search over the contributor database).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from core.errors import InvalidInput, NotFound
from core.people.matching import search_people
from core.people.resolve import resolve_person
from core.people.types import PersonInfo

MAX_CANDIDATES = 5
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class LookupQuery:
    """Exactly one of `ref` (email, LinkedIn URL, id) or `name` (optionally with `company`)."""

    ref: str | None = None
    name: str | None = None
    company: str | None = None


def find_people(
    engine: Engine, query: LookupQuery, *, team_id: int | None = None, limit: int = MAX_CANDIDATES
) -> list[PersonInfo]:
    if query.ref:
        return [resolve_person(engine, query.ref)]
    name = (query.name or "").strip()
    if not name:
        raise InvalidInput("lookup: give a name (e.g. Jane Doe at Acme), an email address or a LinkedIn URL")
    if len(name) > MAX_NAME_LENGTH or len(query.company or "") > MAX_NAME_LENGTH:
        raise InvalidInput(f"lookup: name and company must be at most {MAX_NAME_LENGTH} characters")
    found = search_people(engine, name, query.company or None, team_id=team_id, limit=limit)
    # Only people of the shared database can be accessed; a team's private upload rows cannot.
    people = [resolve_person(engine, c.person_id) for c in found if c.person_id is not None]
    if not people:
        where = f" at {query.company}" if query.company else ""
        raise NotFound(f"no person matches {name!r}{where}")
    return people


__all__ = ["LookupQuery", "MAX_CANDIDATES", "find_people"]
