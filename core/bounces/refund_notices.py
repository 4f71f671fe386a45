"""Everything a refund notice tells its member, gathered from the records behind it: which email,
when it was accessed, sent and bounced, and from which billing cycle the credit counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from core.accounts import Accounts, cycle_bounds
from core.outbox import Notice
from storage.db import read_transaction
from storage.models import Bounce, DataRequest, RefundDecision
from storage.timeutil import as_utc

_DR = DataRequest.__table__
_DEC = RefundDecision.__table__
_BOUNCE = Bounce.__table__


@dataclass(frozen=True)
class RefundNoticeDetails:
    notice_id: int
    team_id: int
    member_id: int | None
    granted: bool
    credits: int
    email_address: str
    accessed_at: datetime | None
    sent_at: datetime
    bounced_at: datetime
    bounce_status: str | None
    credit_cycle_starts_at: datetime | None  # granted only: when the credit comes back
    summary: str  # the outbox's one-sentence account, reason included


def refund_notice_details(engine: Engine, accounts: Accounts, notice: Notice) -> RefundNoticeDetails:
    payload = notice.payload
    with read_transaction(engine) as conn:
        decided = conn.execute(
            select(_DEC.c.decided_at, _BOUNCE.c.received_at)
            .join(_BOUNCE, _BOUNCE.c.id == _DEC.c.bounce_id)
            .where(_DEC.c.id == payload.decision_id)
        ).one_or_none()
        accessed_at = None
        if payload.data_request_id is not None:
            row = conn.execute(
                select(_DR.c.settled_at, _DR.c.created_at).where(_DR.c.id == payload.data_request_id)
            ).one_or_none()
            if row is not None:
                accessed_at = as_utc(row.settled_at or row.created_at)
    decided_at = as_utc(decided.decided_at) if decided else notice.created_at
    bounced_at = as_utc(decided.received_at) if decided else notice.created_at
    granted = payload.outcome == "granted"
    credit_cycle = None
    if granted:
        # A refund earned in one cycle is granted when the next one starts (Accounts.close_cycle).
        credit_cycle = cycle_bounds(accounts.team(notice.team_id).cycle_anchor_day, decided_at)[1]
    return RefundNoticeDetails(
        notice_id=notice.id,
        team_id=notice.team_id,
        member_id=notice.member_id,
        granted=granted,
        credits=payload.credits,
        email_address=payload.recipient,
        accessed_at=accessed_at,
        sent_at=as_utc(datetime.fromisoformat(payload.sent_at)),
        bounced_at=bounced_at,
        bounce_status=payload.bounce_status,
        credit_cycle_starts_at=credit_cycle,
        summary=payload.text,
    )


__all__ = ["RefundNoticeDetails", "refund_notice_details"]
