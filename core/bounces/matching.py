"""Which send a bounce proves, if any. A bounce is a claim; only proof ties it to a send.

Proof, by where the bounce came from:
- a DSN (mailbox, file): the per-send VERP token of the send's envelope sender (core.bounces.verp),
  checked at intake into `bounce.proven_send_id`. Without a valid token it matches nothing, whatever
  Message-ID it quotes: anyone who received a message can quote its Message-ID.
- a webhook event: the team whose own secret signed the request (`bounce.team_id`), and a
  Message-ID (or VERP token) of one of *that team's* sends. No cross-team match, no fallback.
Then, either way: a quoted Message-ID must be the proven send's, and the failed recipient must be
the send's recipient (both lower-cased, as sends store it). A failed send never went out, so it
cannot bounce. Every refusal is named (`MatchRefusal`) and kept on the bounce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from storage.models import EmailSend

_S = EmailSend.__table__


class SendStatus(StrEnum):
    PENDING = "pending"  # recorded before the SMTP conversation
    SENT = "sent"
    FAILED = "failed"  # the relay refused it: nothing went out


class MatchMethod(StrEnum):
    VERP = "verp"  # a valid per-send token in the bounce
    WEBHOOK = "webhook"  # a team's signed event naming that team's send


class MatchRefusal(StrEnum):
    NO_PROOF = "no_proof"  # no valid VERP token (DSN), or neither token nor Message-ID (webhook)
    UNKNOWN_SEND = "unknown_send"  # the Message-ID is not one of this team's sends
    SEND_FAILED = "send_failed"
    MESSAGE_ID_MISMATCH = "message_id_mismatch"
    RECIPIENT_MISMATCH = "recipient_mismatch"


@dataclass(frozen=True)
class SendMatch:
    send: Any  # the email_send row
    method: MatchMethod


@dataclass(frozen=True)
class BounceClaim:
    """What a stored bounce says and proves about the send it reports."""

    recipient: str
    message_id: str | None
    proven_send_id: int | None  # from a valid VERP token
    team_id: int | None  # set only for an event signed with that team's webhook secret


def match_send(conn: Connection, claim: BounceClaim) -> SendMatch | MatchRefusal:
    if claim.proven_send_id is not None:
        row = conn.execute(select(_S).where(_S.c.id == claim.proven_send_id)).one_or_none()
        method = MatchMethod.VERP
    elif claim.team_id is not None and claim.message_id:
        row = conn.execute(select(_S).where(_S.c.message_id == claim.message_id)).one_or_none()
        method = MatchMethod.WEBHOOK
    else:
        return MatchRefusal.NO_PROOF
    if row is None or (claim.team_id is not None and row.team_id != claim.team_id):
        return MatchRefusal.UNKNOWN_SEND
    # A pending send counts: a bounce proving it shows it went out even if the process died before
    # recording "sent". A failed one never left.
    if row.status == SendStatus.FAILED.value:
        return MatchRefusal.SEND_FAILED
    if claim.message_id and claim.message_id != row.message_id:
        return MatchRefusal.MESSAGE_ID_MISMATCH
    if claim.recipient.strip().lower() != row.recipient:
        return MatchRefusal.RECIPIENT_MISMATCH
    return SendMatch(row, method)


__all__ = ["BounceClaim", "MatchMethod", "MatchRefusal", "SendMatch", "SendStatus", "match_send"]
