"""A contact as front ends give it (ContactQuery) and the normalised form matching and contributions
work on (NormalizedContact). Only business fields exist here: an upload's other columns (deal value,
notes, personal email...) have no field to arrive in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from core.errors import InvalidInput
from core.normalize.companies import company_key
from core.normalize.domains import registrable_domain
from core.normalize.emails import NormalizedEmail, normalize_email
from core.normalize.linkedin import canonical_linkedin_url
from core.normalize.names import parse_name
from core.normalize.phones import NormalizedPhone, normalize_phone
from core.normalize.text import clean
from storage.models.enums import PhoneKind


@dataclass(frozen=True)
class ContactQuery:
    """One row or lookup. Every field is optional text, as it came from the user."""

    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = None
    linkedin_url: str | None = None
    company: str | None = None
    domain: str | None = None  # a domain or a website URL
    title: str | None = None
    phone: str | None = None
    location: str | None = None
    country_code: str | None = None  # ISO 3166 alpha-2, reads phone numbers written without +CC

    @classmethod
    def from_mapping(cls, values: Mapping[str, str | None]) -> ContactQuery:
        """Build from a row already keyed by field name (after header mapping). Keys that are not
        business fields (deal value, notes, personal email...) are dropped here, unread."""
        return cls(**{name: values.get(name) for name in _FIELD_NAMES if values.get(name) is not None})


_FIELD_NAMES = tuple(f.name for f in fields(ContactQuery))

# Longest accepted value per field (the shared columns' widths; a website may be a long URL).
MAX_FIELD_LENGTHS: dict[str, int] = {
    "first_name": 128,
    "last_name": 128,
    "full_name": 255,
    "email": 320,
    "linkedin_url": 255,
    "company": 255,
    "domain": 2048,
    "title": 255,
    "phone": 64,
    "location": 255,
    "country_code": 2,
}


@dataclass(frozen=True)
class NormalizedContact:
    first_name: str | None
    last_name: str | None
    full_name: str | None
    first_key: str
    last_key: str
    full_key: str
    email: NormalizedEmail | None
    linkedin_url: str | None
    company: str | None
    company_key: str
    domain: str | None  # registrable domain of the website, else of a business email
    title: str | None
    phone: NormalizedPhone | None
    location: str | None

    @property
    def has_name(self) -> bool:
        return bool(self.first_key and self.last_key)

    @property
    def business_email(self) -> str | None:
        return self.email.address if self.email is not None and self.email.business else None

    @property
    def phone_kind(self) -> PhoneKind | None:
        return None if self.phone is None else self.phone.kind


def normalize_contact(query: ContactQuery) -> NormalizedContact:
    """Raises InvalidInput naming the field for a value that is too long or malformed, and for a
    record with nothing to identify a person or company by."""
    for f in fields(ContactQuery):
        value = getattr(query, f.name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{f.name}: expected text, got {type(value).__name__}")
        limit = MAX_FIELD_LENGTHS[f.name]
        if value is not None and len(value) > limit:
            raise InvalidInput(f"{f.name}: {len(value)} characters, at most {limit} allowed")
    name = parse_name(query.full_name, query.first_name, query.last_name)
    email = normalize_email(query.email) if clean(query.email) else None
    linkedin = None
    if clean(query.linkedin_url):
        linkedin = canonical_linkedin_url(query.linkedin_url or "")
        if linkedin is None:
            raise InvalidInput(f"linkedin_url: {query.linkedin_url!r:.80} is not a LinkedIn profile URL")
    company = clean(query.company)
    domain = registrable_domain(query.domain)
    if domain is None and email is not None and email.business:
        domain = registrable_domain(email.domain)
    phone = normalize_phone(query.phone, clean(query.country_code)) if clean(query.phone) else None
    contact = NormalizedContact(
        first_name=name.first_name,
        last_name=name.last_name,
        full_name=name.full_name,
        first_key=name.first_key,
        last_key=name.last_key,
        full_key=name.full_key,
        email=email,
        linkedin_url=linkedin,
        company=company,
        company_key=company_key(company),
        domain=domain,
        title=clean(query.title),
        phone=phone,
        location=clean(query.location),
    )
    if not (contact.email or contact.linkedin_url or contact.full_key or contact.company_key or contact.domain):
        raise InvalidInput("empty record: no email, LinkedIn URL, name, company or website")
    return contact
