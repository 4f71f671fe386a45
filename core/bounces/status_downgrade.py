"""A hard bounce downgrades the address in the shared email table, for every team.

Policy (the shared database must not keep calling a dead mailbox "verified"):
- the mailbox or domain does not exist (mailbox_not_found, domain_not_found, bad_address_syntax)
  -> `invalid`, with that reason;
- any other hard bounce (disabled, moved, no reason given) -> `update_required`: the address was
  good and is not any more, the person may have moved;
- `blocked` (5.7.x policy / reputation rejections) changes nothing: it judges the sender, not the
  mailbox.
Matching a send is not enough to get here (a Message-ID is easy to quote, and the recipient of a
message sees its envelope sender): core.bounces.refunds calls this only for a bounce that proved its send
(VERP token or a team's signed webhook event, same recipient) *and* was confirmed by an SMTP
re-check of the mailbox or by an independent bounce from another team; it names the send's own
recipient, never an address taken from the bounce. No team id is written: the shared row does not
say whose send bounced.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select, update

from core.verify.result import score_for
from storage.models import EmailAddress
from storage.models.enums import EmailStatus

_E = EmailAddress.__table__

INVALID_REASONS = frozenset({"mailbox_not_found", "domain_not_found", "bad_address_syntax"})
IGNORED_REASONS = frozenset({"blocked"})
GENERIC_REASON = "hard_bounce"


def downgraded_status(reason: str | None) -> tuple[EmailStatus, str] | None:
    """(new status, reason) after a hard bounce with `reason`, or None to leave the address alone."""
    if reason in IGNORED_REASONS:
        return None
    if reason in INVALID_REASONS:
        return EmailStatus.INVALID, reason
    return EmailStatus.UPDATE_REQUIRED, reason or GENERIC_REASON


def downgrade_after_hard_bounce(conn: Connection, address: str, reason: str | None, now: datetime) -> bool:
    """Returns True if a shared address row was changed."""
    change = downgraded_status(reason)
    if change is None:
        return False
    status, why = change
    row = conn.execute(select(_E).where(func.lower(_E.c.address) == address.lower()).with_for_update()).one_or_none()
    if row is None:
        return False
    # An invalid address stays invalid; a later, milder bounce does not upgrade it.
    if row.status == EmailStatus.INVALID.value and status != EmailStatus.INVALID:
        return False
    reasons = [r for r in (row.reasons or []) if r != why] + [why]
    # The score follows the status: a bounced address scored as it was when verified would still rank
    # among the best.
    score = score_for(status, tuple(reasons))
    conn.execute(
        update(_E).where(_E.c.id == row.id).values(status=status.value, reasons=reasons, score=score, checked_at=now)
    )
    return True


__all__ = ["downgrade_after_hard_bounce", "downgraded_status"]
