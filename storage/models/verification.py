"""Email verification history: one row per check, never updated (the latest row is the current
answer; older rows show how an address changed over time)."""

from datetime import datetime

from sqlalchemy import Column, Index
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel


class EmailVerification(SQLModel, table=True):
    __tablename__ = "email_verification"
    # "Latest check of these addresses" is the one query this table serves.
    __table_args__ = (Index("ix_email_verification_address_checked_at", "address", "checked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320)  # normalised, case-folded (ParsedAddress.key)
    status: str = Field(max_length=32)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: int = Field(default=0, ge=0, le=100)
    mx_host: str | None = Field(default=None, max_length=255)
    catch_all: bool | None = None
    suggestion: str | None = Field(default=None, max_length=320)
    detail: str | None = Field(default=None, max_length=500)
    # SMTP exchanges as evidence: [{"step", "host", "code", "enhanced", "text", "attempt"}, ...]
    evidence: list[dict] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checked_at: datetime
