"""The engagement clock: likely_to_engage lasts the recency window; delivered sends are counted.

- `expire_in`: an address whose latest reply is older than the window is plain verified again. Its
  checked_at is the reply's (replies.py), so by then the freshness window has passed too and the
  stale re-check (core/data_requests/recheck.py) verifies it again before anyone pays for it.
- `record_deliveries_in`: a send that went out and drew no bounce within the grace period is
  counted as `delivered` evidence for its address. Weaker than a reply: it never changes a status.
Both act only on what is due and are idempotent (a send is counted once, by its own mark).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, exists, func, or_, select, update

from core.engagement.replies import SENT, EngagementKind, record_evidence
from core.verify.result import score_for
from storage.models import Bounce, EmailAddress, EmailEngagement, EmailSend
from storage.models.enums import EmailStatus

_S = EmailSend.__table__
_E = EmailAddress.__table__
_G = EmailEngagement.__table__
_B = Bounce.__table__

MAX_DELIVERIES_PER_RUN = 1000


def expire_in(conn: Connection, now: datetime, window: timedelta) -> int:
    """likely_to_engage -> verified where no reply falls in the window ending at `now`. Returns how many."""
    first_day = (now - window).date()
    recent = exists().where(
        _G.c.address == func.lower(_E.c.address),
        _G.c.kind == EngagementKind.REPLY.value,
        _G.c.last_seen_on >= first_day,
    )
    result = conn.execute(
        update(_E)
        .where(_E.c.status == EmailStatus.LIKELY_TO_ENGAGE.value, ~recent)
        .values(status=EmailStatus.VERIFIED.value, score=score_for(EmailStatus.VERIFIED, ()))
        .execution_options(preserve_rowcount=True)
    )
    return max(result.rowcount, 0)


def record_deliveries_in(conn: Connection, now: datetime, grace: timedelta, limit: int = MAX_DELIVERIES_PER_RUN) -> int:
    """Count sends delivered without a bounce (sent before now - grace). Returns sends looked at."""
    bounced = exists().where(or_(_B.c.send_id == _S.c.id, _B.c.proven_send_id == _S.c.id))
    due = conn.execute(
        select(_S.c.id, _S.c.recipient, _S.c.sent_at)
        .where(
            _S.c.status == SENT,
            _S.c.delivery_recorded_at.is_(None),
            _S.c.sent_at <= now - grace,
            ~bounced,
        )
        .order_by(_S.c.id)
        .limit(limit)
    ).all()
    if not due:
        return 0
    shared = set(
        conn.execute(
            select(func.lower(_E.c.address)).where(func.lower(_E.c.address).in_({s.recipient.lower() for s in due}))
        ).scalars()
    )
    for send in due:
        if send.recipient.lower() in shared:
            record_evidence(conn, send.recipient.lower(), EngagementKind.DELIVERED, send.sent_at)
    conn.execute(
        update(_S)
        .where(_S.c.id.in_([s.id for s in due]), _S.c.delivery_recorded_at.is_(None))
        .values(delivery_recorded_at=now)
    )
    return len(due)


__all__ = ["MAX_DELIVERIES_PER_RUN", "expire_in", "record_deliveries_in"]
