"""Where pushed fields go in the CRM (the admin's field map), and which CRM properties a pull reads.

A pull asks for business fields only: deal stages, owners, notes and prices are never requested."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

from core.crm.connector import CrmContact, PropertySpec
from core.errors import InvalidInput
from core.normalize.contact import ContactQuery

MAX_PROPERTY_CHARS = 100
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CUSTOM_PREFIX = "tributary_"


class PushField(StrEnum):
    EMAIL = "email"
    EMAIL_STATUS = "email_status"
    PHONE = "phone"  # the office phone (free with an accessed email)
    MOBILE = "mobile"  # costs credits: pushed only once the team accessed it
    TITLE = "title"
    COMPANY = "company"
    JOB_CHANGE = "job_change"  # "true" while the contact's email is update_required (the person moved)


# Standard HubSpot properties where one exists (filled when empty), our own properties otherwise.
DEFAULT_FIELD_MAP: dict[str, str] = {
    PushField.EMAIL: "email",
    PushField.EMAIL_STATUS: "tributary_email_status",
    PushField.PHONE: "phone",
    PushField.MOBILE: "mobilephone",
    PushField.TITLE: "jobtitle",
    PushField.COMPANY: "company",
    PushField.JOB_CHANGE: "tributary_job_change",
}

# What a pull reads: HubSpot property -> ContactQuery field. Nothing else is requested from the CRM.
PULL_PROPERTIES: dict[str, str] = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "jobtitle": "title",
    "company": "company",
    "website": "domain",
    "phone": "phone",
    "hs_linkedin_url": "linkedin_url",
    "city": "location",
}


def check_field_map(mapping: Mapping[str, str]) -> dict[str, str]:
    """A field map with every key a PushField and every value a property name; "" or "-" unmaps."""
    out: dict[str, str] = {}
    for key, prop in mapping.items():
        try:
            field = PushField(key.strip())
        except ValueError:
            known = ", ".join(f.value for f in PushField)
            raise InvalidInput(f"field {key!r}: not one of {known}") from None
        prop = prop.strip()
        if prop in ("", "-"):
            continue
        if len(prop) > MAX_PROPERTY_CHARS or not _PROPERTY_NAME.match(prop):
            raise InvalidInput(f"field {field.value}: property {prop!r} must be lower-case letters, digits and _")
        out[field.value] = prop
    taken = [p for p in out.values() if list(out.values()).count(p) > 1]
    if taken:
        raise InvalidInput(f"property {taken[0]!r} is mapped from two fields")
    return out


def parse_assignments(words: Sequence[str]) -> dict[str, str]:
    """`email=email title=jobtitle mobile=-` as given on the command line."""
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidInput(f"{word!r}: write FIELD=PROPERTY (or FIELD=- to stop pushing it)")
        out[key] = value
    return out


def custom_properties(mapping: Mapping[str, str]) -> list[PropertySpec]:
    """Every mapped property: the connector creates those the CRM does not have yet."""
    return [PropertySpec(prop, "Tributary " + field.replace("_", " ")) for field, prop in sorted(mapping.items())]


def pull_properties(mapping: Mapping[str, str]) -> list[str]:
    return sorted({*PULL_PROPERTIES, "mobilephone", *mapping.values()})


def to_query(contact: CrmContact) -> ContactQuery:
    """A CRM contact's business fields; anything else it carries is not read."""
    values = {field: contact.value(prop) or None for prop, field in PULL_PROPERTIES.items()}
    if values.get("phone") is None and contact.value("mobilephone"):
        values["phone"] = contact.value("mobilephone")
    return ContactQuery.from_mapping({k: v for k, v in values.items() if v})


def value_hash(value: str) -> str:
    """What is kept of a CRM value: "" for no value, else a SHA-256 (values themselves stay in the CRM)."""
    value = (value or "").strip()
    return hashlib.sha256(value.encode()).hexdigest() if value else ""
