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


class RateWindow(SQLModel, table=True):
    """Requests of one key (an API key, a member's Slack lookups) in one fixed window, for every process
    (used when no Redis is configured; core/rate_limits.py)."""

    __tablename__ = "rate_window"

    key: str = Field(primary_key=True, max_length=128)
    window_start: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # epoch seconds
    # Concurrent requests of one key count on different rows (PostgreSQL row locks); the window's
    # count is the sum of its shards.
    shard: int = Field(default=0, primary_key=True, sa_column_kwargs={"autoincrement": False})
    hits: int = 0
