"""The contact vocabulary every layer shares: who a person is (PersonInfo) and what a source found
(EmailFinding, PhoneFinding)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
