"""The REST API: keys (hashed), idempotency records, and rate-limit windows shared by web processes."""

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class ApiKey(SQLModel, table=True):
    """A member's API key. Only the SHA-256 of the secret is kept; `prefix` (public) names it in lists
    and logs."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    name: str = Field(max_length=64)
    prefix: str = Field(max_length=16, unique=True)
    secret_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiIdempotency(SQLModel, table=True):
    """One Idempotency-Key of one API key: the request it was first used for and the response given."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("api_key_id", "idem_key", name="uq_api_idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id")
    idem_key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)  # method, path and body
    # Until the first request answers, a second one with the same key waits (or gets 409 after the lease).
    lease_until: datetime | None = None
    response_status: int | None = None
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
