"""Access: one-time codes that connect a Slack workspace to a team, and per-key request counts."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class SlackConnectCode(SQLModel, table=True):
    """A code an admin made on the CLI (`tributary slack connect-code TEAM`); only its hash is kept."""

    __tablename__ = "slack_connect_code"

    code_hash: str = Field(primary_key=True, max_length=64)  # SHA-256 hex of the code
    team_id: int = Field(foreign_key="team.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_slack_team_id: str | None = Field(default=None, max_length=32)


class RateLimitWindow(SQLModel, table=True):
    """Requests counted per key (e.g. lookups of one member) in its current window, for every process."""

    __tablename__ = "rate_limit_window"

    key: str = Field(primary_key=True, max_length=128)
    window_start: datetime
    count: int = Field(default=0)
