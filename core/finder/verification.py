"""The finder's and the waterfall's access to the email verifier: through the stored history, so a
candidate checked recently is not probed again (core.verify.freshness.ensure_fresh)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from core.finder.finder import VerifyBatch
from core.verify.freshness import ensure_fresh
from core.verify.pipeline import EmailVerifier
from core.verify.result import EmailResult


def stored_verify_batch(engine: Engine, verifier: EmailVerifier) -> VerifyBatch:
    """Results in input order; fresh stored results are reused, the rest verified in one batch."""

    def verify(addresses: Sequence[str]) -> list[EmailResult]:
        results = ensure_fresh(engine, addresses, verifier=verifier)
        return [results[address] for address in addresses]

    return verify
