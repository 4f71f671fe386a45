"""Slack: which workspace belongs to which team, and slack_sdk's OAuth tables.

`slack_installations`, `slack_bots` and `slack_oauth_states` are slack_sdk's own tables, used by its
SQLAlchemy installation and state stores. They are declared here column for column as slack_sdk
builds them (naive UTC `DateTime`, as slack_sdk writes them) so that Alembic creates them and the
models-versus-migrations check sees them; a test compares them with slack_sdk's definitions.
One deliberate difference: the token columns are wider (TOKEN_COLUMN_LENGTH), because tokens are
stored encrypted (core.secrets) and a Fernet token is about 1.4 times the plain text plus 73 bytes.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow

TOKEN_COLUMN_LENGTH = 1000
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")


class SlackWorkspace(SQLModel, table=True):
    """A Slack workspace connected to a Tributary team (a one-time code typed in Slack, or the operator)."""

    __tablename__ = "slack_workspace"

    slack_team_id: str = Field(primary_key=True, max_length=32)
    team_id: int = Field(foreign_key="team.id", index=True)
    connected_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    connected_at: datetime = Field(default_factory=utcnow)


slack_installations = Table(
    "slack_installations",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    Column("enterprise_url", String(200)),
    Column("team_id", String(32)),
    Column("team_name", String(200)),
    Column("bot_token", String(TOKEN_COLUMN_LENGTH)),
    Column("bot_id", String(32)),
    Column("bot_user_id", String(32)),
    Column("bot_scopes", String(1000)),
    Column("bot_refresh_token", String(TOKEN_COLUMN_LENGTH)),
    Column("bot_token_expires_at", DateTime),
    Column("user_id", String(32), nullable=False),
    Column("user_token", String(TOKEN_COLUMN_LENGTH)),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", String(TOKEN_COLUMN_LENGTH)),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", String(200)),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("token_type", String(32)),
    Column("installed_at", DateTime, nullable=False, default=sa.func.now()),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)

slack_bots = Table(
    "slack_bots",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("enterprise_id", String(32)),
    Column("enterprise_name", String(200)),
    Column("team_id", String(32)),
    Column("team_name", String(200)),
    Column("bot_token", String(TOKEN_COLUMN_LENGTH)),
    Column("bot_id", String(32)),
    Column("bot_user_id", String(32)),
    Column("bot_scopes", String(1000)),
    Column("bot_refresh_token", String(TOKEN_COLUMN_LENGTH)),
    Column("bot_token_expires_at", DateTime),
    Column("is_enterprise_install", Boolean, default=False, nullable=False),
    Column("installed_at", DateTime, nullable=False, default=sa.func.now()),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)

slack_oauth_states = Table(
    "slack_oauth_states",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)
