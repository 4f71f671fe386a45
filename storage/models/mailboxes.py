"""Connected mailboxes: a member's IMAP connection, their private list, candidate provenance, and
the shared per-domain email-provider aggregate.

Team-private:
- MailboxConnection: one member's mailbox (password encrypted with SecretBox), the sync cursor
  (UIDVALIDITY + last UID seen) and the member's contribution opt-out. Never a body or subject.
- MailboxPrivateEntry: addresses and domains a member marked private; nothing about them is kept.
- CandidateSource: which inflow supplied which fields of a team's private candidate (a digest per
  field, never the value), so a disconnect removes what came only from that mailbox. Written only
  for candidates a mailbox touched.

Shared (no team, no member, no person):
- DomainEmailProvider: which email provider a company domain uses, seen from MX or message headers.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class MailboxConnection(SQLModel, table=True):
    __tablename__ = "mailbox_connection"
    __table_args__ = (UniqueConstraint("member_id", name="uq_mailbox_connection_member"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    host: str = Field(max_length=255)
    port: int
    security: str = Field(max_length=16)  # ssl | starttls | plain (loopback only)
    username: str = Field(max_length=320)
    password_encrypted: str = Field(max_length=1024)
    folder: str = Field(default="INBOX", max_length=255)
    contribute: bool = True  # the member's own opt-out of the contributor network
    # IMAP's UIDVALIDITY and UIDs are unsigned 32-bit: above a signed INTEGER's range (RFC 3501).
    uid_validity: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    messages_read: int = 0
    last_synced_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class MailboxPrivateEntry(SQLModel, table=True):
    __tablename__ = "mailbox_private_entry"
    __table_args__ = (UniqueConstraint("member_id", "value", name="uq_mailbox_private_member_value"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    value: str = Field(max_length=320)  # a lower-cased address, or a registrable domain
    created_at: datetime = Field(default_factory=utcnow)


class CandidateSource(SQLModel, table=True):
    __tablename__ = "candidate_source"

    candidate_id: int = Field(foreign_key="contact_candidate.id", primary_key=True)
    source: str = Field(max_length=32, primary_key=True)  # mailbox:<id> | csv | crm | prior
    # field name -> short digest of the value this source supplied (never the value itself)
    fields: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DomainEmailProvider(SQLModel, table=True):
    __tablename__ = "domain_email_provider"

    domain: str = Field(max_length=255, primary_key=True)
    provider: str = Field(max_length=32, primary_key=True)  # google | microsoft | zoho | ...
    evidence: str = Field(max_length=16, primary_key=True)  # mx | headers
    first_seen_on: date
    last_seen_on: date
