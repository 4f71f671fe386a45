"""Re-checking a stale "verified" email before anyone pays for it (DataRequests' `reverify` hook)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

from core.sources.base import EmailFinding
from core.verify.freshness import ensure_fresh
from core.verify.pipeline import EmailVerifier


def stale_email_rechecker(engine: Engine, verifier: EmailVerifier) -> Callable[[EmailFinding], EmailFinding]:
    def recheck(finding: EmailFinding) -> EmailFinding:
        # ensure_fresh reuses a verification younger than the window, else probes and stores anew.
        result = ensure_fresh(engine, [finding.address], verifier=verifier)[finding.address]
        return replace(finding, status=result.status, score=result.score, checked_at=result.checked_at)

    return recheck
