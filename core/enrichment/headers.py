"""Which input column feeds which contact field: recognised from the header names people really use,
overridable per column (`--map "Account Name=company"`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.errors import InvalidInput
from core.normalize.contact import MAX_FIELD_LENGTHS, ContactQuery

FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "linkedin_url",
    "company",
    "domain",
    "title",
    "phone",
)
IGNORE = "ignore"  # `--map "Notes=ignore"` stops a column being recognised

# Header names after folding (lower case, letters and digits only), per field.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "prenom", "vorname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname", "nom", "nachname"),
    "full_name": ("name", "fullname", "contactname", "contact", "personname", "leadname"),
    "email": ("email", "emailaddress", "workemail", "businessemail", "mail", "emailid", "contactemail"),
    "linkedin_url": ("linkedin", "linkedinurl", "linkedinprofile", "linkedinprofileurl", "personlinkedinurl", "li"),
    "company": (
        "company",
        "companyname",
        "account",
        "accountname",
        "organization",
        "organisation",
        "organizationname",
        "employer",
        "org",
    ),
    "domain": ("website", "domain", "companydomain", "companywebsite", "web", "site", "websiteurl", "url", "homepage"),
    "title": ("title", "jobtitle", "position", "role", "designation"),
    "phone": ("phone", "phonenumber", "mobile", "mobilephone", "workphone", "telephone", "tel", "directphone"),
}
_FOLDED_TO_FIELD = {synonym: field for field, names in _SYNONYMS.items() for synonym in names}
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Fields of which at least one must be present for a row to be looked up.
IDENTIFYING_FIELDS = ("email", "linkedin_url", "company", "domain")


def fold_header(name: str) -> str:
    return _NON_ALNUM.sub("", name.strip().lstrip("\ufeff").lower())


def parse_map_options(items: Sequence[str]) -> dict[str, str]:
    """`COLUMN=FIELD` items -> {column: field}. The column is matched exactly (then case-insensitively)."""
    mapping: dict[str, str] = {}
    for item in items:
        column, sep, field = item.rpartition("=")
        field = field.strip().lower()
        if not sep or not column.strip():
            raise InvalidInput(f"--map {item!r}: expected COLUMN=FIELD, e.g. --map 'Account Name=company'")
        if field not in FIELDS and field != IGNORE:
            raise InvalidInput(f"--map {item!r}: unknown field {field!r} (fields: {', '.join(FIELDS)}, or {IGNORE})")
        mapping[column.strip()] = field
    return mapping


@dataclass(frozen=True)
class HeaderMap:
    header: tuple[str, ...]
    columns: tuple[tuple[str, int], ...]  # (field, column index), at most one column per field

    def column_of(self, field: str) -> int | None:
        return next((index for name, index in self.columns if name == field), None)

    def describe(self) -> str:
        return ", ".join(f"{self.header[index]!r} -> {field}" for field, index in self.columns) or "nothing"

    def read(self, cells: Sequence[str], row_number: int) -> tuple[ContactQuery, str | None]:
        """The row's contact fields, and the reason it cannot be looked up (None when it can)."""
        values: dict[str, str | None] = {}
        problems = []
        for field, index in self.columns:
            raw = cells[index].strip() if index < len(cells) else ""
            limit = MAX_FIELD_LENGTHS[field]
            if len(raw) > limit:
                problems.append(
                    f"row {row_number}, column {self.header[index]!r} ({field}): "
                    f"{len(raw)} characters, at most {limit} accepted"
                )
                raw = ""
            values[field] = raw or None
        query = ContactQuery(**values)
        if problems:
            return query, "; ".join(problems)
        if not any(values.get(field) for field in IDENTIFYING_FIELDS):
            return query, (
                f"row {row_number}: needs at least one of email, LinkedIn URL, company or website "
                f"(columns used: {self.describe()})"
            )
        return query, None


def map_header(header: Sequence[str], overrides: Mapping[str, str] | None = None) -> HeaderMap:
    overrides = dict(overrides or {})
    by_exact = {name.strip(): i for i, name in reversed(list(enumerate(header)))}
    by_folded = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    assigned: dict[int, str] = {}
    for column, field in overrides.items():
        index = by_exact.get(column, by_folded.get(column.lower()))
        if index is None:
            shown = ", ".join(repr(h) for h in header[:30])
            raise InvalidInput(f"--map: no column named {column!r} in the header (columns: {shown})")
        assigned[index] = field
    taken = {field for field in assigned.values() if field != IGNORE}
    for index, name in enumerate(header):
        if index in assigned:
            continue
        field = _FOLDED_TO_FIELD.get(fold_header(name))
        if field is not None and field not in taken:
            assigned[index] = field
            taken.add(field)
    columns = tuple(sorted(((f, i) for i, f in assigned.items() if f != IGNORE), key=lambda c: FIELDS.index(c[0])))
    fields_seen = [field for field, _ in columns]
    duplicates = {f for f in fields_seen if fields_seen.count(f) > 1}
    if duplicates:
        raise InvalidInput(f"--map: more than one column mapped to {', '.join(sorted(duplicates))}")
    return HeaderMap(header=tuple(header), columns=columns)
