"""A team's CRM connection and what the sync knows of each CRM contact (all team-private).

- crm_connection: one per team: the connector kind, its token (SecretBox-encrypted), the admin's
  field map (Tributary field -> CRM property), the member the sync acts as (who is charged), the
  incremental cursor (the CRM's last-modified, epoch ms) and the last sync's summary.
- crm_record: one CRM contact: the shared person it is linked to (when it matched one), the CRM's
  last-modified as of our last read or write (an unchanged contact is skipped on the next pull), and
  a hash per mapped property of the value the CRM held then (never the value itself).
- crm_write: what Tributary last wrote into one property of one contact (a hash and the CRM's
  last-modified after the write). A later CRM value with another hash was a person's edit: the
  write `yielded` and Tributary never writes that property of that contact again.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class CrmConnection(SQLModel, table=True):
    __tablename__ = "crm_connection"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", unique=True)
    kind: str = Field(max_length=32)  # hubspot
    token_encrypted: str = Field(max_length=2048)
    member_id: int = Field(foreign_key="member.id")  # the sync acts (and is charged) as this member
    field_map: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    properties_ready: bool = False  # the field map's custom properties exist in the CRM
    max_credits_per_sync: int = 0  # the scheduled sync's spend cap (0: push only what was accessed)
    cursor_modified_ms: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_sync_at: datetime | None = None
    last_sync: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class CrmRecord(SQLModel, table=True):
    __tablename__ = "crm_record"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_id", name="uq_crm_record_connection_crm_id"),
        Index("ix_crm_record_connection_person", "connection_id", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="crm_connection.id")
    crm_id: str = Field(max_length=64)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    modified_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    # {crm property: sha256 hex of the value it held, "" when empty}: enough to tell "missing" and
    # "still what we wrote" apart without keeping the CRM's data.
    seen: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class CrmWrite(SQLModel, table=True):
    __tablename__ = "crm_write"
    __table_args__ = (UniqueConstraint("record_id", "property", name="uq_crm_write_record_property"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="crm_record.id")
    property: str = Field(max_length=128)
    value_hash: str = Field(max_length=64)
    modified_ms: int = Field(sa_column=Column(BigInteger, nullable=False))  # the CRM's, after our write
    yielded: bool = False  # a person edited it after our write: never written again
    written_at: datetime = Field(default_factory=utcnow)
