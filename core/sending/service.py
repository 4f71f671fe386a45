"""A member sends an email to a contact through the team's relay; every send is recorded.

The record is written before the SMTP conversation (status pending) and settled after it (sent or
failed), so a process that dies mid-send still leaves the Message-ID a bounce can be matched to.
The send remembers the data request through which the team bought the recipient address, if any:
only these sends count for bounce refunds. With a bounce address and a VERP key, each send's
envelope sender carries its own token (core.bounces.verp): the proof a bounce must carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Engine, func, insert, select, update

from core.accounts import Accounts, MemberInfo, TeamInfo
from core.bounces.matching import SendStatus
from core.bounces.verp import verp_address
from core.errors import InvalidInput
from core.sending.relays import RelayInfo, Relays
from core.sending.smtp import SendFailed, deliver, tls_context
from storage.db import read_transaction, run_write
from storage.limits import MAX_TEXT_CHARS
from storage.models import DataRequest, EmailAddress, EmailSend
from storage.models.enums import DataKind, DataRequestStatus
from storage.timeutil import as_utc, utcnow

_S = EmailSend.__table__
_DR = DataRequest.__table__
_E = EmailAddress.__table__

MAX_SUBJECT_LENGTH = 500
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SendReceipt:
    send_id: int
    message_id: str
    recipient: str
    team_id: int
    member_id: int
    person_id: int | None
    data_request_id: int | None
    relay_host: str
    sent_at: datetime


class Sending:
    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        relays: Relays,
        *,
        bounce_address: str | None = None,
        timeout_s: float = 30.0,
        ca_file: str | None = None,
        verp_key: str | None = None,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.relays = relays
        self.bounce_address = bounce_address
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self.verp_key = verp_key

    def send(
        self,
        team_ref: int | str,
        member_ref: int | str,
        to: str,
        *,
        subject: str,
        body: str,
        now: datetime | None = None,
    ) -> SendReceipt:
        team = self.accounts.team(team_ref)
        member = self.accounts.member(member_ref, team.id)
        recipient = _recipient(to)
        subject = _subject(subject)
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise InvalidInput(f"body: larger than {MAX_BODY_BYTES} bytes")
        relay = self.relays.relay_for(team.id, member.id)
        password = relay.password()  # fails before anything is recorded if the secret is missing
        sender = relay.from_address or member.email
        message_id = make_msgid(domain=sender.rpartition("@")[2])
        now = as_utc(now or utcnow())
        message = _message(sender, recipient, subject, body, message_id, now)
        send_id, person_id, data_request_id = self._record_pending(
            team, member, relay, recipient, subject, message_id, now
        )
        try:
            deliver(
                relay,
                message,
                envelope_from=self._envelope_from(send_id, sender),
                password=password,
                timeout_s=self.timeout_s,
                context=tls_context(self.ca_file),
            )
        except SendFailed as exc:
            self._settle(send_id, SendStatus.FAILED, None, str(exc))
            raise
        self._settle(send_id, SendStatus.SENT, now, None)
        return SendReceipt(
            send_id=send_id,
            message_id=message_id,
            recipient=recipient,
            team_id=team.id,
            member_id=member.id,
            person_id=person_id,
            data_request_id=data_request_id,
            relay_host=relay.host,
            sent_at=now,
        )

    def _record_pending(
        self,
        team: TeamInfo,
        member: MemberInfo,
        relay: RelayInfo,
        recipient: str,
        subject: str,
        message_id: str,
        now: datetime,
    ) -> tuple[int, int | None, int | None]:
        """Record the send as pending before it goes out; returns (send id, person id, data request id)."""

        def record(conn: Connection) -> tuple[int, int | None, int | None]:
            data_request_id, person_id = self._bought(conn, team.id, recipient, now)
            send_id = conn.execute(
                insert(_S)
                .values(
                    team_id=team.id,
                    member_id=member.id,
                    person_id=person_id,
                    data_request_id=data_request_id,
                    relay_id=relay.id,
                    message_id=message_id,
                    recipient=recipient,
                    subject=subject,
                    status=SendStatus.PENDING.value,
                    created_at=now,
                )
                .returning(_S.c.id)
            ).scalar_one()
            return send_id, person_id, data_request_id

        return run_write(self.engine, record)

    def _envelope_from(self, send_id: int, sender: str) -> str:
        if self.bounce_address and self.verp_key:
            return verp_address(self.verp_key, send_id, self.bounce_address)
        return self.bounce_address or sender

    def sends(self, team_id: int) -> list[SendReceipt]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_S).where(_S.c.team_id == team_id).order_by(_S.c.id)).all()
        return [
            SendReceipt(
                r.id,
                r.message_id,
                r.recipient,
                r.team_id,
                r.member_id,
                r.person_id,
                r.data_request_id,
                "",
                as_utc(r.sent_at or r.created_at),
            )
            for r in rows
        ]

    def _settle(self, send_id: int, status: SendStatus, sent_at: datetime | None, error: str | None) -> None:
        run_write(
            self.engine,
            lambda conn: conn.execute(
                update(_S)
                .where(_S.c.id == send_id)
                .values(status=status.value, sent_at=sent_at, error=(error or None) and error[:MAX_TEXT_CHARS])
            ),
        )

    @staticmethod
    def _bought(conn: Connection, team_id: int, recipient: str, now: datetime) -> tuple[int | None, int | None]:
        """(data request that bought this address for the team, person) — latest settled before now."""
        row = conn.execute(
            select(_DR.c.id, _DR.c.person_id)
            .where(
                _DR.c.team_id == team_id,
                _DR.c.kind == DataKind.EMAIL.value,
                func.lower(_DR.c.email_address) == recipient,
                _DR.c.status.in_([DataRequestStatus.CHARGED.value, DataRequestStatus.FREE.value]),
                _DR.c.settled_at <= now,
            )
            .order_by(_DR.c.settled_at.desc())
            .limit(1)
        ).one_or_none()
        if row is not None:
            return row.id, row.person_id
        person_id = conn.execute(select(_E.c.person_id).where(func.lower(_E.c.address) == recipient)).scalar()
        return None, person_id


def _recipient(to: str) -> str:
    try:
        return validate_email((to or "").strip(), check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"recipient {to!r}: {exc}") from None


def _subject(subject: str | None) -> str:
    subject = (subject or "").strip()
    if not subject:
        raise InvalidInput("subject: must not be empty")
    if len(subject) > MAX_SUBJECT_LENGTH or "\n" in subject or "\r" in subject:
        raise InvalidInput(f"subject: one line of at most {MAX_SUBJECT_LENGTH} characters")
    return subject


def _message(sender: str, recipient: str, subject: str, body: str, message_id: str, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message.set_content(body)
    return message


__all__ = ["SendFailed", "SendReceipt", "Sending"]
