"""one rate-limit table for every front end: rate_window (key, fixed window, shard) replaces
rate_limit_window (Slack) and api_rate_window (API keys)

Revision ID: 0015_rate_windows
Revises: 0014_job_chunks
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0015_rate_windows"
down_revision: str | None = "0014_job_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Counts of the current minute only: nothing worth carrying over.
    op.create_table(
        "rate_window",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("window_start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", "shard"),
    )
    op.drop_table("rate_limit_window")
    op.drop_table("api_rate_window")


def downgrade() -> None:
    op.create_table(
        "api_rate_window",
        sa.Column("api_key_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("window_start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_key.id"]),
        sa.PrimaryKeyConstraint("api_key_id", "window_start", "shard"),
    )
    op.create_table(
        "rate_limit_window",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.drop_table("rate_window")
