"""Customer accounts: plans, teams, members and billing cycles."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.enums import Role
from storage.timeutil import utcnow


class Plan(SQLModel, table=True):
    __tablename__ = "plan"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    monthly_credits: int = Field(ge=0)
    rollover: bool = False
    price_email_credits: int = Field(default=1, ge=0)
    price_mobile_credits: int = Field(default=8, ge=0)
    price_export_credits: int = Field(default=0, ge=0)
    # REST API: requests per minute per key, and the price of one definitive email verification.
    api_requests_per_minute: int = Field(default=600, ge=1, sa_column_kwargs={"server_default": "600"})
    price_verify_credits: int = Field(default=1, ge=0, sa_column_kwargs={"server_default": "1"})
    builtin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True)
    plan_id: int = Field(foreign_key="plan.id")
    # Day of month (1-31) on which each billing cycle starts; clamped to short months.
    cycle_anchor_day: int = Field(ge=1, le=31)
    # The contributor-network opt-out: when False, uploads serve only this team.
    contribute: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("team_id", "email", name="uq_member_team_email"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    email: str = Field(max_length=320)
    role: str = Field(default=Role.MEMBER, max_length=16)
    slack_user_id: str | None = Field(default=None, max_length=64, index=True)
    google_subject: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class BillingCycle(SQLModel, table=True):
    __tablename__ = "billing_cycle"
    __table_args__ = (UniqueConstraint("team_id", "starts_at", name="uq_cycle_team_start"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime | None = None
