"""mailboxes: connected IMAP mailboxes, members' private lists, candidate provenance, domain email providers

Revision ID: 0020_mailboxes
Revises: 0019_accounts
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0020_mailboxes"
down_revision: str | None = "0019_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("password_encrypted", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("folder", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("contribute", sa.Boolean(), nullable=False),
        sa.Column("uid_validity", sa.Integer(), nullable=True),
        sa.Column("last_uid", sa.Integer(), nullable=False),
        sa.Column("messages_read", sa.Integer(), nullable=False),
        sa.Column("last_synced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", name="uq_mailbox_connection_member"),
    )
    op.create_index(op.f("ix_mailbox_connection_team_id"), "mailbox_connection", ["team_id"])
    op.create_table(
        "mailbox_private_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "value", name="uq_mailbox_private_member_value"),
    )
    op.create_index(op.f("ix_mailbox_private_entry_member_id"), "mailbox_private_entry", ["member_id"])
    op.create_table(
        "candidate_source",
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["contact_candidate.id"]),
        sa.PrimaryKeyConstraint("candidate_id", "source"),
    )
    op.create_table(
        "domain_email_provider",
        sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("evidence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("first_seen_on", sa.Date(), nullable=False),
        sa.Column("last_seen_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("domain", "provider", "evidence"),
    )


def downgrade() -> None:
    op.drop_table("domain_email_provider")
    op.drop_table("candidate_source")
    op.drop_index(op.f("ix_mailbox_private_entry_member_id"), table_name="mailbox_private_entry")
    op.drop_table("mailbox_private_entry")
    op.drop_index(op.f("ix_mailbox_connection_team_id"), table_name="mailbox_connection")
    op.drop_table("mailbox_connection")
