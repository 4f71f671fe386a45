"""The email finder as a contact source: guessed-then-verified addresses; it never finds phones."""

from __future__ import annotations

from decimal import Decimal

from core.finder.finder import EmailFinder
from core.people.types import EmailFinding, PersonInfo, PhoneFinding


class PatternFinderSource:
    name = "pattern"
    cost_per_hit_usd = Decimal(0)  # our own SMTP probes
    rate_limit_per_s: float | None = None  # the verifier keeps its own per-host limits

    def __init__(self, finder: EmailFinder, *, timeout_s: float = 60.0) -> None:
        self.finder = finder
        # Informational: each verifier call is bounded by the verifier's own DNS/SMTP timeouts.
        self.timeout_s = timeout_s

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        found = self.finder.find(person)
        if found is None:
            return None
        return EmailFinding(
            address=found.address,
            status=found.status,
            score=found.score,
            checked_at=found.checked_at,
            source=self.name,
        )

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        return []
