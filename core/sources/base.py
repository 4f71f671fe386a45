"""The small protocol every contact-data source speaks, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, EmailStatus, PhoneKind, PhoneStatus


@dataclass(frozen=True)
class PersonInfo:
    id: int
    full_name: str
    first_name: str | None
    last_name: str | None
    title: str | None
    company: str | None
    domain: str | None
    location: str | None
    linkedin_url: str | None
    country_code: str | None = None


@dataclass(frozen=True)
class EmailFinding:
    address: str
    status: EmailStatus
    score: int
    checked_at: datetime | None
    source: str

    @property
    def chargeable(self) -> bool:
        return self.status in CHARGEABLE_EMAIL_STATUSES


@dataclass(frozen=True)
class PhoneFinding:
    e164: str
    kind: PhoneKind
    status: PhoneStatus
    line_type: str | None
    source: str


class ContactSource(Protocol):
    """Finds a person's email and phones. Later sources (providers, the pattern finder) plug in here."""

    name: str

    def find_email(self, person: PersonInfo) -> EmailFinding | None: ...

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]: ...
