"""Which send a bounce reports: by the Message-ID we generated, else by recipient and time.

The Message-ID is exact (we made it; the DSN quotes it). Some bounces return no headers of the
original; then the latest send to the same address within RECIPIENT_MATCH_WINDOW before the bounce
arrived is taken. MTAs give up retrying after about five days, so a week covers every honest DSN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from storage.models import EmailSend
from storage.timeutil import as_utc

RECIPIENT_MATCH_WINDOW = timedelta(days=7)

_S = EmailSend.__table__


class SendStatus(StrEnum):
    PENDING = "pending"  # recorded before the SMTP conversation
    SENT = "sent"
    FAILED = "failed"  # the relay refused it: nothing went out


class MatchMethod(StrEnum):
    MESSAGE_ID = "message_id"
    RECIPIENT_WINDOW = "recipient_window"


@dataclass(frozen=True)
class SendMatch:
    send: Any  # the email_send row
    method: MatchMethod


def match_send(conn: Connection, *, message_id: str | None, recipient: str, received_at: datetime) -> SendMatch | None:
    if message_id:
        # A pending send counts too: a bounce quoting our Message-ID proves it went out even if the
        # process died before recording "sent". A failed one never left, so its ID cannot bounce.
        row = conn.execute(
            select(_S).where(_S.c.message_id == message_id, _S.c.status != SendStatus.FAILED.value)
        ).one_or_none()
        if row is not None:
            return SendMatch(row, MatchMethod.MESSAGE_ID)
    received_at = as_utc(received_at)
    row = conn.execute(
        select(_S)
        .where(
            _S.c.recipient == recipient.lower(),
            _S.c.status == SendStatus.SENT.value,
            _S.c.sent_at <= received_at,
            _S.c.sent_at >= received_at - RECIPIENT_MATCH_WINDOW,
        )
        .order_by(_S.c.sent_at.desc(), _S.c.id.desc())
        .limit(1)
    ).one_or_none()
    return SendMatch(row, MatchMethod.RECIPIENT_WINDOW) if row is not None else None


__all__ = ["RECIPIENT_MATCH_WINDOW", "MatchMethod", "SendMatch", "SendStatus", "match_send"]
