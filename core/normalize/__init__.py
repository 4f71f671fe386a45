"""Normalisation of contact data: names, companies, domains, LinkedIn URLs, emails and phones."""

from core.normalize.companies import company_key
from core.normalize.contact import ContactQuery, NormalizedContact, normalize_contact
from core.normalize.domains import registrable_domain
from core.normalize.emails import NormalizedEmail, normalize_email
from core.normalize.linkedin import canonical_linkedin_url
from core.normalize.names import PersonName, parse_name
from core.normalize.phones import NormalizedPhone, normalize_phone
from core.normalize.text import clean, fold

__all__ = [
    "ContactQuery",
    "NormalizedContact",
    "NormalizedEmail",
    "NormalizedPhone",
    "PersonName",
    "canonical_linkedin_url",
    "clean",
    "company_key",
    "fold",
    "normalize_contact",
    "normalize_email",
    "normalize_phone",
    "parse_name",
    "registrable_domain",
]
