"""sheets: the Google Sheets add-on's jobs (with their rows' placement) and team domain restrictions

Revision ID: 0016_sheets
Revises: 0015_rate_windows
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0016_sheets"
down_revision: str | None = "0015_rate_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sheets_job",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("spreadsheet_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("sheet_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("header_row", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("output_headers", sa.JSON(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("token_encrypted", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("writing_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["enrichment_job.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_sheets_job_state", "sheets_job", ["state"])
    op.create_index("ix_sheets_job_team_id", "sheets_job", ["team_id"])
    op.create_table(
        "sheets_row",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("sheet_row", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("blank", sa.Boolean(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("credits_shown", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("written_row", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["enrichment_job.id"]),
        sa.PrimaryKeyConstraint("job_id", "row_index"),
    )
    op.create_table(
        "sheets_team_domain",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("google_domain", sqlmodel.sql.sqltypes.AutoString(length=253), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )


def downgrade() -> None:
    op.drop_table("sheets_team_domain")
    op.drop_table("sheets_row")
    op.drop_index("ix_sheets_job_team_id", table_name="sheets_job")
    op.drop_index("ix_sheets_job_state", table_name="sheets_job")
    op.drop_table("sheets_job")
