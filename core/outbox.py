"""The outbox of notices for members (refund decisions today), delivered by a front end (Slack).

A notice is written in the same transaction as the decision it reports, so it can never be lost,
and stays until the deliverer acknowledges it (`mark_delivered`). A failed delivery is retried with
exponential backoff (`mark_failed`). `pending_notices` leases what it returns for a while, so two
deliverers running at once do not both send the same notice; one that dies mid-way lets the lease
run out and the notice comes back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, insert, select, update

from core.errors import InvalidInput, NotFound
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import OutboxNotice
from storage.timeutil import as_utc, utcnow

_N = OutboxNotice.__table__

NOTICE_BASE_BACKOFF_S = 30
NOTICE_MAX_BACKOFF_S = 6 * 3600
NOTICE_LEASE_S = 120
MAX_ERROR_LENGTH = 500
MAX_BATCH = 1000


class NoticeKind(StrEnum):
    REFUND_DECISION = "refund_decision"


@dataclass(frozen=True)
class RefundNotice:
    """What a member is told about a bounce of an email they sent through Tributary."""

    decision_id: int
    outcome: str  # granted | refused
    reason: str  # a RefundReason value
    credits: int  # refunded credits (0 when refused)
    recipient: str
    message_id: str
    data_request_id: int | None
    sent_at: str  # ISO 8601, UTC
    bounce_class: str  # hard | soft
    bounce_status: str | None
    text: str  # one readable sentence, ready to show


@dataclass(frozen=True)
class Notice:
    id: int
    kind: NoticeKind
    team_id: int
    member_id: int | None
    payload: RefundNotice
    created_at: datetime
    attempts: int
    last_error: str | None


_PAYLOADS = {NoticeKind.REFUND_DECISION: RefundNotice}


def add_notice(
    conn: Connection, kind: NoticeKind, *, team_id: int, member_id: int | None, payload: RefundNotice, now: datetime
) -> int:
    """Inside the caller's transaction, so the notice commits with what it reports."""
    return conn.execute(
        insert(_N)
        .values(
            kind=NoticeKind(kind).value,
            team_id=team_id,
            member_id=member_id,
            payload=asdict(payload),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        .returning(_N.c.id)
    ).scalar_one()


def backoff_s(attempts: int) -> int:
    """Delay before retry number `attempts` (1-based): 30 s, 60 s, 120 s, ... capped at 6 hours."""
    return min(NOTICE_MAX_BACKOFF_S, NOTICE_BASE_BACKOFF_S * 2 ** max(0, min(attempts - 1, 30)))


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending_notices(
        self, limit: int = 100, *, now: datetime | None = None, lease_s: int = NOTICE_LEASE_S
    ) -> list[Notice]:
        """Undelivered notices that are due, oldest first, leased to the caller for `lease_s`."""
        if not 1 <= limit <= MAX_BATCH:
            raise InvalidInput(f"limit: must be between 1 and {MAX_BATCH}, got {limit}")
        now = as_utc(now or utcnow())

        def op(conn: Connection) -> list[Notice]:
            stmt = (
                select(_N)
                .where(_N.c.delivered_at.is_(None), _N.c.next_attempt_at <= now)
                .order_by(_N.c.id)
                .limit(limit)
            )
            if not is_sqlite(self.engine):
                # Two deliverers at once each get their own notices instead of waiting on the other.
                stmt = stmt.with_for_update(skip_locked=True)
            rows = conn.execute(stmt).all()
            if rows:
                conn.execute(
                    update(_N)
                    .where(_N.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + timedelta(seconds=lease_s))
                )
            return [_notice(r) for r in rows]

        return run_write(self.engine, op)

    def mark_delivered(self, notice_id: int, *, now: datetime | None = None) -> None:
        """Idempotent: a second acknowledgement keeps the first delivery time."""
        now = as_utc(now or utcnow())

        def op(conn: Connection) -> None:
            self._get(conn, notice_id)
            conn.execute(
                update(_N).where(_N.c.id == notice_id, _N.c.delivered_at.is_(None)).values(delivered_at=now)
            )

        run_write(self.engine, op)

    def mark_failed(
        self, notice_id: int, error: str, retry_after_s: float | None = None, *, now: datetime | None = None
    ) -> datetime:
        """Record a failed delivery; the notice comes back after an exponential backoff (or the
        receiver's Retry-After, if longer). Returns when it is next due."""
        now = as_utc(now or utcnow())

        def op(conn: Connection) -> datetime:
            row = self._get(conn, notice_id)
            if row.delivered_at is not None:
                return as_utc(row.next_attempt_at)
            attempts = row.attempts + 1
            delay = max(float(backoff_s(attempts)), float(retry_after_s or 0))
            due = now + timedelta(seconds=delay)
            conn.execute(
                update(_N)
                .where(_N.c.id == notice_id)
                .values(
                    attempts=attempts, next_attempt_at=due, last_error=(error or "unknown error")[:MAX_ERROR_LENGTH]
                )
            )
            return due

        return run_write(self.engine, op)

    def notices(self, *, team_id: int | None = None, undelivered_only: bool = False) -> list[Notice]:
        def op(conn: Connection) -> list[Notice]:
            stmt = select(_N).order_by(_N.c.id)
            if team_id is not None:
                stmt = stmt.where(_N.c.team_id == team_id)
            if undelivered_only:
                stmt = stmt.where(_N.c.delivered_at.is_(None))
            return [_notice(r) for r in conn.execute(stmt)]

        with read_transaction(self.engine) as conn:
            return op(conn)

    @staticmethod
    def _get(conn: Connection, notice_id: int):
        row = conn.execute(select(_N).where(_N.c.id == notice_id).with_for_update()).one_or_none()
        if row is None:
            raise NotFound(f"unknown notice {notice_id}")
        return row


def _notice(row) -> Notice:
    kind = NoticeKind(row.kind)
    return Notice(
        id=row.id,
        kind=kind,
        team_id=row.team_id,
        member_id=row.member_id,
        payload=_PAYLOADS[kind](**row.payload),
        created_at=as_utc(row.created_at),
        attempts=row.attempts,
        last_error=row.last_error,
    )


__all__ = ["Notice", "NoticeKind", "Outbox", "RefundNotice", "add_notice", "backoff_s"]
