"""The waterfall: each team's ordered sources for email and phone, and the log of every source call.

Both are team-owned operational records (configuration and our own spend), not contact data: they
live beside the shared tables, never in them."""

from datetime import datetime

from sqlalchemy import Column, Index
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class WaterfallConfig(SQLModel, table=True):
    """A team's waterfall; a team without a row uses the default (the contributor database only)."""

    __tablename__ = "waterfall_config"

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    # Source names in the order they are tried, e.g. ["database", "pattern", "hunter"].
    email_sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    phone_sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Verify a provider's email with our own verifier before accepting it.
    validate_email: bool = False
    updated_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    updated_at: datetime = Field(default_factory=utcnow)


class SourceCall(SQLModel, table=True):
    """One call to one source during a lookup: what it cost us, how long it took, what came of it."""

    __tablename__ = "source_call"
    __table_args__ = (
        Index("ix_source_call_team_created", "team_id", "created_at"),
        Index("ix_source_call_source_created", "source", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id")
    kind: str = Field(max_length=16)  # email | phone | validation
    source: str = Field(max_length=64)
    position: int  # 0-based place of the source in the team's list
    # found | not_found | error | timeout | http_429 | http_5xx | bad_response | circuit_open | ...
    outcome: str = Field(max_length=32)
    result_status: str | None = Field(default=None, max_length=32)  # email or phone status found
    latency_ms: int
    # Our cost in millionths of a US dollar (integers: exact sums on every database).
    cost_usd_micros: int = 0
    detail: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
