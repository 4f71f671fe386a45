"""bounce proof (VERP send, webhook team, re-check evidence), per-team webhook secrets, wider token columns

- bounce: proven_send_id, team_id, match_refusal, recheck_attempts, next_recheck_at
- refund_decision: confirmation, recheck_status, recheck_detail, rechecked_at, confirmed_by_bounce_id
- team_webhook_secret: one encrypted signing secret per team
- slack_installations / slack_bots: token columns 200 -> 1000 characters (they hold Fernet tokens)

Revision ID: 0011_bounce_proof_and_secrets
Revises: 0010_access
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_bounce_proof_and_secrets"
down_revision: str | None = "0010_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENS = {
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def upgrade() -> None:
    with op.batch_alter_table("bounce", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proven_send_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("match_refusal", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("recheck_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_recheck_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_foreign_key("fk_bounce_proven_send_id", "email_send", ["proven_send_id"], ["id"])
        batch_op.create_foreign_key("fk_bounce_team_id", "team", ["team_id"], ["id"])

    with op.batch_alter_table("refund_decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmation", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("recheck_status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("recheck_detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("rechecked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by_bounce_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_refund_decision_confirmed_by", "bounce", ["confirmed_by_bounce_id"], ["id"])

    op.create_table(
        "team_webhook_secret",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("rotated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )

    for table, columns in _TOKENS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, type_=sa.String(length=1000), existing_type=sa.String(length=200))


def downgrade() -> None:
    # On PostgreSQL an encrypted token longer than 200 characters does not fit the old width: a
    # downgrade past this revision means re-installing the Slack app (tokens are not decrypted here).
    for table, columns in _TOKENS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, type_=sa.String(length=200), existing_type=sa.String(length=1000))
    op.drop_table("team_webhook_secret")
    with op.batch_alter_table("refund_decision", schema=None) as batch_op:
        batch_op.drop_constraint("fk_refund_decision_confirmed_by", type_="foreignkey")
        batch_op.drop_column("confirmed_by_bounce_id")
        batch_op.drop_column("rechecked_at")
        batch_op.drop_column("recheck_detail")
        batch_op.drop_column("recheck_status")
        batch_op.drop_column("confirmation")
    with op.batch_alter_table("bounce", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bounce_team_id", type_="foreignkey")
        batch_op.drop_constraint("fk_bounce_proven_send_id", type_="foreignkey")
        batch_op.drop_column("next_recheck_at")
        batch_op.drop_column("recheck_attempts")
        batch_op.drop_column("match_refusal")
        batch_op.drop_column("team_id")
        batch_op.drop_column("proven_send_id")
