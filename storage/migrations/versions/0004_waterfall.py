"""waterfall: per-team source order for email and phone, and the log of every source call

Revision ID: 0004_waterfall
Revises: 0003_contributor
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0004_waterfall"
down_revision: str | None = "0003_contributor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "waterfall_config",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("email_sources", sa.JSON(), nullable=False),
        sa.Column("phone_sources", sa.JSON(), nullable=False),
        sa.Column("validate_email", sa.Boolean(), nullable=False),
        sa.Column("updated_by_member_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["updated_by_member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "source_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("result_status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("cost_usd_micros", sa.Integer(), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("source_call", schema=None) as batch_op:
        batch_op.create_index("ix_source_call_source_created", ["source", "created_at"], unique=False)
        batch_op.create_index("ix_source_call_team_created", ["team_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("source_call", schema=None) as batch_op:
        batch_op.drop_index("ix_source_call_team_created")
        batch_op.drop_index("ix_source_call_source_created")
    op.drop_table("source_call")
    op.drop_table("waterfall_config")
