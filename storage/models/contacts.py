"""Contact data. Company/Person/EmailAddress/Phone are shared across teams and carry no team id;
TeamContact and DataRequest belong to one team."""

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class Company(SQLModel, table=True):
    __tablename__ = "company"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, index=True)
    domain: str | None = Field(default=None, max_length=255, unique=True)
    country_code: str | None = Field(default=None, max_length=2)
    created_at: datetime = Field(default_factory=utcnow)


class Person(SQLModel, table=True):
    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    full_name: str = Field(max_length=255)
    title: str | None = Field(default=None, max_length=255)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    linkedin_url: str | None = Field(default=None, max_length=255, unique=True)
    location: str | None = Field(default=None, max_length=255)
    updated_at: datetime = Field(default_factory=utcnow)


class EmailAddress(SQLModel, table=True):
    __tablename__ = "email_address"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    address: str = Field(max_length=320, unique=True)
    status: str = Field(max_length=32)
    score: int = Field(default=0, ge=0, le=100)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checked_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Phone(SQLModel, table=True):
    __tablename__ = "phone"
    __table_args__ = (UniqueConstraint("person_id", "e164", name="uq_phone_person_number"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    e164: str = Field(max_length=20)
    kind: str = Field(max_length=16)  # mobile | office
    line_type: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=16)
    checked_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class TeamContact(SQLModel, table=True):
    """A prospect a team has saved (by accessing their data)."""

    __tablename__ = "team_contact"
    __table_args__ = (UniqueConstraint("team_id", "person_id", name="uq_contact_team_person"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    created_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow)


class DataRequest(SQLModel, table=True):
    """One team's request for one kind of data about one person: the unit of net-new charging."""

    __tablename__ = "data_request"
    __table_args__ = (
        UniqueConstraint("team_id", "person_id", "kind", name="uq_data_request_team_person_kind"),
        Index("ix_data_request_team_created", "team_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id")
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    attempts: int = 0
    # While in progress, the lookup owns the request until this instant (crash recovery).
    lease_until: datetime | None = None
    member_id: int | None = Field(default=None, foreign_key="member.id")
    feature: str | None = Field(default=None, max_length=16)
    credits_charged: int = 0
    # The hold taken by the latest attempt; a newer attempt voids it if it is still pending.
    hold_id: int | None = None
    charge_transfer_id: int | None = None
    # What the team got: an email address or the mobile numbers, with statuses.
    email_address: str | None = Field(default=None, max_length=320)
    email_status: str | None = Field(default=None, max_length=32)
    office_phone: str | None = Field(default=None, max_length=20)
    mobile_phones: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    settled_at: datetime | None = None
