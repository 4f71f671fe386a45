"""The small protocol every contact-data source speaks, and what it returns."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from core.people.types import EmailFinding, PersonInfo, PhoneFinding


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
