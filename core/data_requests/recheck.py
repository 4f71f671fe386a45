"""Re-checking a stale "verified" email before anyone pays for it (DataRequests' `reverify` hook).

A verification older than the freshness window is stale: a request that found a chargeable email
checked that long ago has it checked again, and charges only if it still deserves it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.people.types import EmailFinding
from core.verify.freshness import KEEPS_ENGAGEMENT, ensure_fresh
from core.verify.pipeline import EmailVerifier
from storage.models.enums import EmailStatus

# Re-checks an email whose verification is older than the freshness window; returns the new finding.
Reverify = Callable[[EmailFinding], EmailFinding]


def is_stale(email: EmailFinding, now: datetime, freshness_window: timedelta) -> bool:
    return email.checked_at is None or now - email.checked_at > freshness_window


def stale_email_rechecker(engine: Engine, verifier: EmailVerifier) -> Reverify:
    def recheck(finding: EmailFinding) -> EmailFinding:
        # ensure_fresh reuses a verification younger than the window, else probes and stores anew.
        result = ensure_fresh(engine, [finding.address], verifier=verifier)[finding.address]
        if finding.status == EmailStatus.LIKELY_TO_ENGAGE and result.status in KEEPS_ENGAGEMENT:
            # The re-check agrees with (or cannot judge) the reply that proved the mailbox read.
            return replace(finding, checked_at=result.checked_at)
        return replace(finding, status=result.status, score=result.score, checked_at=result.checked_at)

    return recheck
