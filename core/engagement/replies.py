"""The engagement rule: which reply promotes which address, and what it writes.

A reply promotes an address only when all of these hold:
- its In-Reply-To or References names the Message-ID of a send made through Tributary that went out
  (status sent), no later than the reply;
- it comes from the address that send went to (a reply from anyone else names a message they were
  shown, not their own mailbox);
- the address is in the shared email table and is not invalid or update_required (a reply does not
  revive an address a confirmed bounce or a job change retired: only a re-verification does).
Then the shared row becomes likely_to_engage, its checked_at moves to the reply (a read mailbox is
fresher evidence than an SMTP probe, and the freshness window now runs from here), and the
engagement is counted by day in email_engagement. Nothing shared names the team or the send; the
team's own send row remembers that it was answered (`replied_at`), once.

Residual risk, stated plainly: From is not authenticated by SMTP, so a team that sends to an address
and forges the answer itself could promote it. What bounds it: only addresses already shared and
not retired, only for the recency window, and re-verified before anyone pays after the freshness
window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.engagement.headers import message_ids
from core.verify.result import score_for
from storage.db import is_sqlite
from storage.models import EmailAddress, EmailEngagement, EmailSend
from storage.models.enums import EmailStatus
from storage.timeutil import as_utc

_S = EmailSend.__table__
_E = EmailAddress.__table__
_G = EmailEngagement.__table__

SENT = "sent"  # core.bounces.matching.SendStatus.SENT, the only sends that reached a relay
# A reply's Date is the replier's clock: this much earlier than our send still counts as after it.
CLOCK_SKEW = timedelta(minutes=10)
MAX_ADDRESS_CHARS = 320
# What a reply may promote: anything not retired. An invalid or update_required address stays so.
PROMOTABLE = frozenset(
    {
        EmailStatus.VERIFIED,
        EmailStatus.LIKELY_TO_ENGAGE,
        EmailStatus.ACCEPT_ALL,
        EmailStatus.UNVERIFIED,
        EmailStatus.UNKNOWN,
    }
)


class EngagementKind(StrEnum):
    REPLY = "reply"
    DELIVERED = "delivered"


class ReplyResult(StrEnum):
    ENGAGED = "engaged"  # the address is likely_to_engage now
    NO_MATCHING_SEND = "no_matching_send"  # names no send of ours (or one that never went out)
    NOT_THE_RECIPIENT = "not_the_recipient"  # names a send of ours, but comes from someone else
    NOT_SHARED = "not_shared"  # a genuine reply, but the address is not in the shared table
    RETIRED = "retired"  # a genuine reply to an invalid or update_required address: left as it is
    TOO_OLD = "too_old"  # a genuine reply older than the recency window: counted, promotes nothing


@dataclass(frozen=True)
class ReplyOutcome:
    result: ReplyResult
    address: str
    status: EmailStatus | None  # the shared address's status afterwards (None: not shared)

    @property
    def genuine(self) -> bool:
        """A reply to one of our sends from its recipient (whatever it changed)."""
        return self.result in (ReplyResult.ENGAGED, ReplyResult.NOT_SHARED, ReplyResult.RETIRED, ReplyResult.TOO_OLD)


def observe_reply_in(
    conn: Connection,
    from_address: str,
    in_reply_to: str | None,
    references: str | None,
    received_at: datetime,
    *,
    window_start: datetime,
) -> ReplyOutcome:
    """Apply one reply (module doc). A reply received before `window_start` (the recency window's
    start, now minus the window) is counted but promotes nothing: it would expire at once."""
    address = (from_address or "").strip().lower()[:MAX_ADDRESS_CHARS]
    received_at = as_utc(received_at)
    ids = message_ids(in_reply_to, references)
    sends = (
        conn.execute(
            select(_S.c.id, _S.c.recipient, _S.c.replied_at).where(
                _S.c.message_id.in_(ids), _S.c.status == SENT, _S.c.sent_at <= received_at + CLOCK_SKEW
            )
        ).all()
        if ids
        else []
    )
    if not sends:
        return ReplyOutcome(ReplyResult.NO_MATCHING_SEND, address, None)
    answered = [s for s in sends if s.recipient.lower() == address]
    if not answered:
        return ReplyOutcome(ReplyResult.NOT_THE_RECIPIENT, address, None)
    first_time = [s.id for s in answered if s.replied_at is None]
    if first_time:
        conn.execute(update(_S).where(_S.c.id.in_(first_time)).values(replied_at=received_at))
    row = conn.execute(
        select(_E.c.id, _E.c.status, _E.c.checked_at).where(func.lower(_E.c.address) == address).with_for_update()
    ).one_or_none()
    if row is None:
        return ReplyOutcome(ReplyResult.NOT_SHARED, address, None)
    status = EmailStatus(row.status)
    if status not in PROMOTABLE:
        return ReplyOutcome(ReplyResult.RETIRED, address, status)
    if received_at < as_utc(window_start):
        record_evidence(conn, address, EngagementKind.REPLY, received_at, count=bool(first_time))
        return ReplyOutcome(ReplyResult.TOO_OLD, address, status)
    checked_at = received_at if row.checked_at is None else max(as_utc(row.checked_at), received_at)
    conn.execute(
        update(_E)
        .where(_E.c.id == row.id)
        .values(
            status=EmailStatus.LIKELY_TO_ENGAGE.value,
            score=score_for(EmailStatus.LIKELY_TO_ENGAGE, ()),
            checked_at=checked_at,
        )
    )
    record_evidence(conn, address, EngagementKind.REPLY, received_at, count=bool(first_time))
    return ReplyOutcome(ReplyResult.ENGAGED, address, EmailStatus.LIKELY_TO_ENGAGE)


def record_evidence(conn: Connection, address: str, kind: EngagementKind, at: datetime, *, count: bool = True) -> None:
    """Count one engagement of `address` on `at`'s day; a repeat moves last_seen_on (never back)."""
    day = as_utc(at).date()
    dialect_insert = sqlite.insert if is_sqlite(conn.engine) else postgresql.insert
    stmt = dialect_insert(_G).values(address=address, kind=kind.value, first_seen_on=day, last_seen_on=day, times=1)
    latest = func.max if is_sqlite(conn.engine) else func.greatest
    earliest = func.min if is_sqlite(conn.engine) else func.least
    stmt = stmt.on_conflict_do_update(
        index_elements=["address", "kind"],
        set_={
            "last_seen_on": latest(stmt.excluded.last_seen_on, _G.c.last_seen_on),
            "first_seen_on": earliest(stmt.excluded.first_seen_on, _G.c.first_seen_on),
            "times": _G.c.times + (1 if count else 0),
        },
    )
    conn.execute(stmt)


__all__ = ["EngagementKind", "PROMOTABLE", "ReplyOutcome", "ReplyResult", "observe_reply_in", "record_evidence"]
