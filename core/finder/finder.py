"""Find a person's address at their company domain: candidates from the domain's learned patterns,
verified in small batches (one verifier call per batch, so one SMTP session at the domain's MX),
most likely first, stopping at the first verified.

Outcomes, honestly labelled:
- verified: the mailbox server accepted this candidate and rejects made-up addresses.
- accept_all: the domain accepts any address (catch-all), so no candidate can be confirmed; the most
  likely candidate comes back as accept_all, which is never charged.
- nothing (None): every candidate was rejected, or the domain would not tell (greylisting that
  never cleared, timeouts, blocks, no MX). A guess we could not check is not a finding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from core.finder.learning import Candidate, DomainPatterns, candidates, learn_domain
from core.finder.name_parts import address_tokens
from core.people.types import PersonInfo
from core.verify.reasons import Reason
from core.verify.result import EmailResult
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, EmailStatus

log = logging.getLogger(__name__)

# Verifies a batch of addresses, results in input order (EmailVerifier.verify_many_sync).
VerifyBatch = Callable[[Sequence[str]], list[EmailResult]]

# Rejections that speak about one mailbox only: the next candidate may still exist.
_MAILBOX_REJECTIONS = frozenset({Reason.MAILBOX_NOT_FOUND.value, Reason.DISABLED.value})

DEFAULT_MAX_CANDIDATES = 8
# Small batches: most people are found by the first two or three patterns, and servers grow
# suspicious of sessions that probe many recipients.
DEFAULT_BATCH_SIZE = 3


@dataclass(frozen=True)
class FoundAddress:
    address: str
    status: EmailStatus  # verified or accept_all
    score: int
    checked_at: datetime
    pattern: str
    candidates_checked: int


class EmailFinder:
    def __init__(
        self,
        engine: Engine,
        verify_batch: VerifyBatch,
        *,
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if max_candidates < 1 or batch_size < 1:
            raise ValueError("max_candidates and batch_size must be at least 1")
        self.engine = engine
        self.verify_batch = verify_batch
        self.max_candidates = max_candidates
        self.batch_size = batch_size

    def patterns(self, domain: str) -> DomainPatterns:
        return learn_domain(self.engine, domain)

    def candidates(self, person: PersonInfo) -> list[Candidate]:
        name = address_tokens(person.first_name, person.last_name, person.full_name)
        if name is None or not person.domain:
            return []
        return candidates(name, person.domain, self.patterns(person.domain), limit=self.max_candidates)

    def find(self, person: PersonInfo) -> FoundAddress | None:
        ranked = self.candidates(person)
        checked = 0
        for start in range(0, len(ranked), self.batch_size):
            batch = ranked[start : start + self.batch_size]
            results = self.verify_batch([c.address for c in batch])
            checked += len(batch)
            for candidate, result in zip(batch, results, strict=True):
                if result.status in CHARGEABLE_EMAIL_STATUSES:
                    return self._found(candidate, result, EmailStatus.VERIFIED, checked)
            catch_all = next((r for r in results if r.status == EmailStatus.ACCEPT_ALL or r.catch_all), None)
            if catch_all is not None:
                # The server says yes to everything: the likeliest guess is the best we can give.
                return self._found(ranked[0], catch_all, EmailStatus.ACCEPT_ALL, checked)
            if not all(r.status == EmailStatus.INVALID and _MAILBOX_REJECTIONS & set(r.reasons) for r in results):
                log.info("finder: %s would not say (%s); stopping", person.domain, [str(r.status) for r in results])
                return None
        return None

    @staticmethod
    def _found(candidate: Candidate, result: EmailResult, status: EmailStatus, checked: int) -> FoundAddress:
        return FoundAddress(
            address=candidate.address,
            status=status,
            score=result.score,
            checked_at=result.checked_at,
            pattern=candidate.pattern,
            candidates_checked=checked,
        )
