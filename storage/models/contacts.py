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
    """A prospect a team has saved (by accessing their data, uploading or syncing them).

    Statuses are not copied here: they are read from the shared email/phone rows at query time, so a
    bounce or a job change shows at once. The (team, ..., created_at, id) indexes serve keyset pages."""

    __tablename__ = "team_contact"
    __table_args__ = (
        UniqueConstraint("team_id", "person_id", name="uq_contact_team_person"),
        Index("ix_team_contact_team_saved", "team_id", "created_at", "id"),
        Index("ix_team_contact_team_owner_saved", "team_id", "owner_member_id", "created_at", "id"),
        Index("ix_team_contact_team_source_saved", "team_id", "source", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    created_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    owner_member_id: int | None = Field(default=None, foreign_key="member.id")
    source: str = Field(default="cli", max_length=16)  # ContactSource
    created_at: datetime = Field(default_factory=utcnow)


class ContactList(SQLModel, table=True):
    """A team's named static list of contacts."""

    __tablename__ = "contact_list"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_contact_list_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    name: str = Field(max_length=128)
    created_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow)


class ContactListEntry(SQLModel, table=True):
    __tablename__ = "contact_list_entry"
    __table_args__ = (Index("ix_contact_list_entry_contact", "contact_id"),)

    list_id: int = Field(foreign_key="contact_list.id", primary_key=True)
    contact_id: int = Field(foreign_key="team_contact.id", primary_key=True)
    added_at: datetime = Field(default_factory=utcnow)


class ContactExport(SQLModel, table=True):
    """One export of contacts to CSV: what it selected and what it cost."""

    __tablename__ = "contact_export"
    __table_args__ = (Index("ix_contact_export_team_created", "team_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    member_id: int = Field(foreign_key="member.id")
    feature: str = Field(max_length=16)
    contacts: int = 0
    net_new: int = 0
    credits_charged: int = 0
    charge_transfer_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ContactExportItem(SQLModel, table=True):
    """The contacts one export delivers (fixed when it is charged, so what is paid is what is written)."""

    __tablename__ = "contact_export_item"

    export_id: int = Field(foreign_key="contact_export.id", primary_key=True)
    contact_id: int = Field(foreign_key="team_contact.id", primary_key=True)


class ExportedPerson(SQLModel, table=True):
    """A person a team has exported once: the unit of net-new export charging."""

    __tablename__ = "exported_person"

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    export_id: int = Field(foreign_key="contact_export.id")
    exported_at: datetime = Field(default_factory=utcnow)


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
