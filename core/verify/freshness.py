"""Stored verification results with a freshness window: check again only what is too old.

`ensure_fresh` is what anything that charges for an email calls first: a result younger than the
window (VerifierConfig.freshness_window, 30 days by default; unknown results go stale sooner) is
reused, anything else is verified again, appended to the history (email_verification) and copied
onto the matching `email_address` row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select, update

from core.verify.pipeline import EmailVerifier
from core.verify.result import EmailResult
from core.verify.syntax import ParsedAddress, parse_address
from storage.db import read_transaction, run_write
from storage.models.contacts import EmailAddress
from storage.models.enums import EmailStatus
from storage.models.verification import EmailVerification
from storage.timeutil import as_utc, utcnow

# A re-check with one of these results does not undo an engagement (a reply proved the mailbox is
# read; "verified" agrees, "accept_all" cannot tell). Anything else replaces likely_to_engage.
KEEPS_ENGAGEMENT = frozenset({EmailStatus.VERIFIED, EmailStatus.ACCEPT_ALL})
_IN_CHUNK = 500  # keys per IN (...) query: well under every backend's parameter limit
_DETAIL_MAX = 500


def ensure_fresh(
    engine: Engine,
    addresses: Iterable[str],
    *,
    verifier: EmailVerifier,
    now: datetime | None = None,
) -> dict[str, EmailResult]:
    """A result for every address (keyed as given), verifying only those without a fresh one.

    `now` is the current time (tests pass one); new results are stamped with it.
    """
    stamp = as_utc(now) if now is not None else None
    now = stamp or utcnow()
    wanted = list(dict.fromkeys(addresses))
    parsed: dict[str, ParsedAddress] = {}
    for address in wanted:
        p = parse_address(address, test_environment=verifier.config.test_environment)
        if isinstance(p, ParsedAddress):
            parsed[address] = p

    stored = latest_results(engine, {p.key for p in parsed.values()})
    results: dict[str, EmailResult] = {}
    stale: list[str] = []
    for address in wanted:
        p = parsed.get(address)
        row = stored.get(p.key) if p is not None else None
        if p is not None and row is not None and _is_fresh(row, now, verifier):
            results[address] = _from_row(row, address, p)
        else:
            stale.append(address)  # includes unparseable input: the verifier explains it, cheaply

    if stale:
        checked = verifier.verify_many_sync(stale)
        if stamp is not None:
            checked = [dataclasses.replace(r, checked_at=stamp) for r in checked]
        new: dict[str, EmailResult] = {}
        for address, result in zip(stale, checked, strict=True):
            results[address] = result
            p = parsed.get(address)
            if p is not None:
                new[p.key] = result  # one history row per mailbox, however many spellings came in
        if new:
            run_write(engine, lambda conn: _record(conn, new))
    return results


def latest_results(engine: Engine, keys: set[str]) -> dict[str, EmailVerification]:
    """The newest stored check of each key (ParsedAddress.key) that has one."""
    latest: dict[str, EmailVerification] = {}
    ordered = sorted(keys)
    with read_transaction(engine) as conn:
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            rows = conn.execute(
                select(EmailVerification)
                .where(EmailVerification.address.in_(chunk))  # type: ignore[attr-defined]
                .order_by(EmailVerification.checked_at.desc(), EmailVerification.id.desc())  # type: ignore[union-attr]
            ).all()
            for row in rows:
                record = EmailVerification.model_validate(row._mapping)
                latest.setdefault(record.address, record)
    return latest


def _is_fresh(row: EmailVerification, now: datetime, verifier: EmailVerifier) -> bool:
    config = verifier.config
    window: timedelta = (
        config.unknown_freshness_window if row.status == EmailStatus.UNKNOWN else config.freshness_window
    )
    return now - as_utc(row.checked_at) < window


def _from_row(row: EmailVerification, address: str, parsed: ParsedAddress) -> EmailResult:
    return EmailResult.from_dict(
        {
            "email": address,
            "normalized": parsed.normalized,
            "status": row.status,
            "reasons": row.reasons,
            "score": row.score,
            "mx": row.mx_host,
            "checked_at": as_utc(row.checked_at).isoformat(),
            "catch_all": row.catch_all,
            "suggestion": row.suggestion,
            "detail": row.detail,
            "evidence": row.evidence,
        }
    )


def _record(conn: Connection, results: dict[str, EmailResult]) -> None:
    conn.execute(
        insert(EmailVerification),
        [
            {
                "address": key,
                "status": str(r.status),
                "reasons": list(r.reasons),
                "score": r.score,
                "mx_host": r.mx_host,
                "catch_all": r.catch_all,
                "suggestion": r.suggestion,
                "detail": r.detail[:_DETAIL_MAX] if r.detail else None,
                "evidence": [step.to_dict() for step in r.evidence],
                "checked_at": r.checked_at,
            }
            for key, r in results.items()
        ],
    )
    engaged = EmailAddress.status == EmailStatus.LIKELY_TO_ENGAGE.value  # type: ignore[arg-type]
    for key, r in results.items():
        where = [func.lower(EmailAddress.address) == key]
        if r.status in KEEPS_ENGAGEMENT:
            # Engaged within the window: still likely_to_engage, now freshly checked.
            conn.execute(update(EmailAddress).where(*where, engaged).values(checked_at=r.checked_at))
            where.append(~engaged)
        conn.execute(
            update(EmailAddress)
            .where(*where)
            .values(status=str(r.status), score=r.score, reasons=list(r.reasons), checked_at=r.checked_at)
        )
