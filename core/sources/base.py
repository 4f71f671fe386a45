"""The small protocol every contact-data source speaks, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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


class SourceError(Exception):
    """A source could not answer (network, vendor error, bad response, circuit open): not "nothing found".

    The waterfall logs it and moves on to the next source; `outcome` names the kind of failure."""

    outcome = "error"


class ContactSource(Protocol):
    """Finds a person's email and phones: the contributor database, the pattern finder, HTTP providers,
    and the waterfall that chains them all speak this.

    Returning None / [] means "looked, found nothing"; raising SourceError means "could not look"."""

    name: str
    # What one hit costs us (the vendor's price per found result, in US dollars); 0 for our own sources.
    cost_per_hit_usd: Decimal
    # Requests per second the source accepts; None = unlimited.
    rate_limit_per_s: float | None
    # The longest one call may take before the source gives up on it.
    timeout_s: float

    def find_email(self, person: PersonInfo) -> EmailFinding | None: ...

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]: ...
