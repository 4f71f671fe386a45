"""Engagement, the service: observe a reply from any mailbox, run the clock, read the evidence.

Replies come from the team's reply mailbox (the bounce mailbox poll) or a connected mailbox's sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select

from core.engagement.headers import reply_headers
from core.engagement.replies import EngagementKind, ReplyOutcome, observe_reply_in
from core.engagement.window import expire_in, record_deliveries_in
from core.errors import InvalidInput
from storage.db import read_transaction, run_write
from storage.models import EmailEngagement
from storage.timeutil import as_utc, utcnow

_G = EmailEngagement.__table__

DEFAULT_WINDOW_DAYS = 90
DEFAULT_DELIVERY_GRACE_HOURS = 72


@dataclass(frozen=True)
class EngagementEvidence:
    address: str
    kind: EngagementKind
    first_seen_on: date
    last_seen_on: date
    times: int


@dataclass(frozen=True)
class ClockRun:
    returned_to_verified: int
    deliveries_counted: int


class Engagement:
    def __init__(
        self,
        engine: Engine,
        *,
        window_days: int = DEFAULT_WINDOW_DAYS,
        delivery_grace_hours: int = DEFAULT_DELIVERY_GRACE_HOURS,
    ) -> None:
        if window_days < 1 or delivery_grace_hours < 1:
            raise InvalidInput("engagement: the window and the delivery grace must be positive")
        self.engine = engine
        self.window = timedelta(days=window_days)
        self.delivery_grace = timedelta(hours=delivery_grace_hours)

    def observe_reply(
        self,
        from_address: str,
        in_reply_to: str | None,
        references: str | None,
        received_at: datetime,
        *,
        now: datetime | None = None,
    ) -> ReplyOutcome:
        """One reply, from any mailbox that saw it (replies.py has the rule). A forged one changes nothing."""
        now = as_utc(now or utcnow())
        # A Date in the future is the sender's clock (or a lie): the engagement is no later than now.
        received_at = min(as_utc(received_at), now)
        return run_write(
            self.engine,
            lambda conn: observe_reply_in(
                conn, from_address, in_reply_to, references, received_at, window_start=now - self.window
            ),
        )

    def observe_message(self, raw: bytes, *, now: datetime | None = None) -> ReplyOutcome | None:
        """A raw message from the reply mailbox: None when it is not a person's reply (a bounce, an
        auto-reply, a new message); else what observing it did. Only header fields are read."""
        headers = reply_headers(raw)
        if headers is None:
            return None
        now = as_utc(now or utcnow())
        return self.observe_reply(
            headers.from_address, headers.in_reply_to, headers.references, headers.received_at or now, now=now
        )

    def take_reply(self, raw: bytes, now: datetime | None = None) -> bool:
        """For the mailbox poll: True when `raw` was a genuine reply to one of our sends (then it is
        done with); False sends it down the bounce path, exactly as before."""
        outcome = self.observe_message(raw, now=now)
        return outcome is not None and outcome.genuine

    def run_clock(self, now: datetime | None = None) -> ClockRun:
        """Expire engagements older than the window; count sends delivered without a bounce."""
        now = as_utc(now or utcnow())
        expired = run_write(self.engine, lambda conn: expire_in(conn, now, self.window))
        counted = run_write(self.engine, lambda conn: record_deliveries_in(conn, now, self.delivery_grace))
        return ClockRun(expired, counted)

    def evidence(self, address: str) -> list[EngagementEvidence]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_G).where(_G.c.address == address.strip().lower()).order_by(_G.c.kind)).all()
        return [
            EngagementEvidence(r.address, EngagementKind(r.kind), r.first_seen_on, r.last_seen_on, r.times)
            for r in rows
        ]


__all__ = ["ClockRun", "Engagement", "EngagementEvidence"]
