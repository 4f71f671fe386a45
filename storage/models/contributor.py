"""The contributor database's own tables.

Shared (no team id, no member id — nothing here can be joined back to a customer):
- ContributionObservation: one contributor's sighting of one shared value. The contributor is a keyed
  HMAC fingerprint (core/contributions.py) so independent contributors can be counted, and the day
  (not the instant) is kept so sightings cannot be lined up with a team's activity by time.
- PersonNameKey, CompanyNameKey: folded name keys that make name matching index-backed.

Team-private:
- ContactCandidate: a contact a team supplied that is not (or not wholly) corroborated yet. It
  serves only that team's lookups until a second contributor or an SMTP verification promotes it.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class ContributionObservation(SQLModel, table=True):
    __tablename__ = "contribution_observation"
    __table_args__ = (
        UniqueConstraint(
            "person_id", "value_kind", "value", "contributor", "source_kind", name="uq_observation_value_contributor"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    value_kind: str = Field(max_length=16)  # email | phone | linkedin_url | title | employer | location
    value: str = Field(max_length=320)
    source_kind: str = Field(max_length=32)
    contributor: str = Field(max_length=64)  # hex HMAC-SHA256, never a team id
    first_seen_on: date
    last_seen_on: date


class PersonNameKey(SQLModel, table=True):
    __tablename__ = "person_name_key"
    __table_args__ = (Index("ix_person_name_key_last_first", "last_key", "first_key"),)

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    first_key: str = Field(max_length=128)
    last_key: str = Field(max_length=128)
    full_key: str = Field(max_length=255, index=True)


class CompanyNameKey(SQLModel, table=True):
    __tablename__ = "company_name_key"

    company_id: int = Field(foreign_key="company.id", primary_key=True)
    name_key: str = Field(max_length=255, index=True)


class ContactCandidate(SQLModel, table=True):
    """Team-private. Holds the record's identity and its values; once linked to a shared person
    (`person_id`), only its values that differ from the shared ones still matter."""

    __tablename__ = "contact_candidate"
    __table_args__ = (
        Index("ix_candidate_team_email", "team_id", "email"),
        Index("ix_candidate_team_linkedin", "team_id", "linkedin_url"),
        Index("ix_candidate_team_domain_name", "team_id", "domain", "last_key"),
        Index("ix_candidate_team_company_name", "team_id", "company_key", "last_key"),
        Index("ix_candidate_team_name", "team_id", "last_key", "first_key"),
        # Cross-team corroboration lookups.
        Index("ix_candidate_email", "email"),
        Index("ix_candidate_linkedin", "linkedin_url"),
        Index("ix_candidate_domain_name", "domain", "last_key", "first_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    full_name: str | None = Field(default=None, max_length=255)
    first_key: str = Field(default="", max_length=128)
    last_key: str = Field(default="", max_length=128)
    full_key: str = Field(default="", max_length=255)
    title: str | None = Field(default=None, max_length=255)
    company: str | None = Field(default=None, max_length=255)
    company_key: str = Field(default="", max_length=255)
    domain: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    linkedin_url: str | None = Field(default=None, max_length=255)
    phone_e164: str | None = Field(default=None, max_length=20)
    phone_kind: str | None = Field(default=None, max_length=16)
    phone_line_type: str | None = Field(default=None, max_length=32)
    location: str | None = Field(default=None, max_length=255)
    source_kind: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SourceKind(StrEnum):
    """Where a contributed value was seen."""

    CSV = "csv"
    CRM = "crm"
    MAILBOX = "mailbox"
    PROVIDER = "provider"
    SMTP_VERIFICATION = "smtp_verification"  # our own verifier accepted the mailbox
    BOUNCE = "bounce"


class ValueKind(StrEnum):
    """What a contributed value is about (ContributionObservation.value_kind)."""

    EMAIL = "email"
    PHONE = "phone"
    LINKEDIN_URL = "linkedin_url"
    TITLE = "title"
    EMPLOYER = "employer"  # the company's registrable domain, or "name:<company key>" without one
    LOCATION = "location"
