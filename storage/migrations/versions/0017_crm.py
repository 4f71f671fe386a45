"""crm sync: a team's CRM connection, what the sync knows of each CRM contact, and what it wrote

Revision ID: 0017_crm
Revises: 0016_sheets
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017_crm"
down_revision: str | None = "0016_sheets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("token_encrypted", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("field_map", sa.JSON(), nullable=False),
        sa.Column("properties_ready", sa.Boolean(), nullable=False),
        sa.Column("max_credits_per_sync", sa.Integer(), nullable=False),
        sa.Column("cursor_modified_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_sync_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_sync", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id"),
    )
    op.create_table(
        "crm_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("crm_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("modified_ms", sa.BigInteger(), nullable=False),
        sa.Column("seen", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["crm_connection.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "crm_id", name="uq_crm_record_connection_crm_id"),
    )
    op.create_index("ix_crm_record_connection_person", "crm_record", ["connection_id", "person_id"])
    op.create_table(
        "crm_write",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("property", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("value_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("modified_ms", sa.BigInteger(), nullable=False),
        sa.Column("yielded", sa.Boolean(), nullable=False),
        sa.Column("written_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["crm_record.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "property", name="uq_crm_write_record_property"),
    )


def downgrade() -> None:
    op.drop_table("crm_write")
    op.drop_index("ix_crm_record_connection_person", table_name="crm_record")
    op.drop_table("crm_record")
    op.drop_table("crm_connection")
