"""Usage digests: each admin's chosen digest period, and a record of every digest delivery."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class DigestPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"


class DeliveryStatus(StrEnum):
    SENDING = "sending"  # claimed by one worker until `claimed_until`
    DELIVERED = "delivered"
    FAILED = "failed"  # the last attempt raised; the next run tries again


class DigestPreference(SQLModel, table=True):
    __tablename__ = "digest_preference"
    __table_args__ = (UniqueConstraint("team_id", "member_id", name="uq_digest_pref_team_member"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    member_id: int = Field(foreign_key="member.id")
    period: str = Field(max_length=16)
    updated_at: datetime = Field(default_factory=utcnow)


class DigestDeliveryRecord(SQLModel, table=True):
    """One digest for one admin and one period. The unique key makes sending at most once."""

    __tablename__ = "digest_delivery"
    __table_args__ = (
        UniqueConstraint("team_id", "member_id", "period_kind", "period_start", name="uq_digest_delivery_period"),
        CheckConstraint("period_end > period_start", name="ck_digest_delivery_period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    member_id: int = Field(foreign_key="member.id")
    period_kind: str = Field(max_length=16)
    period_start: datetime
    period_end: datetime
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
