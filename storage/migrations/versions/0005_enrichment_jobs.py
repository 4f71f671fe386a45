"""enrichment jobs: one row per job (progress, spend-cap hold, cancel flag) and one per settled input row

Revision ID: 0005_enrichment_jobs
Revises: 0004_waterfall
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005_enrichment_jobs"
down_revision: str | None = "0004_waterfall"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrichment_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("input_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("want_email", sa.Boolean(), nullable=False),
        sa.Column("want_mobile", sa.Boolean(), nullable=False),
        sa.Column("max_credits", sa.Integer(), nullable=True),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("spent_before_hold_credits", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=True),
        sa.Column("done_rows", sa.Integer(), nullable=False),
        sa.Column("matched_rows", sa.Integer(), nullable=False),
        sa.Column("found_rows", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("charged_credits", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_enrichment_job_team_fingerprint", "enrichment_job", ["team_id", "input_fingerprint"])
    op.create_table(
        "enrichment_row",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("credits_charged", sa.Integer(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["enrichment_job.id"]),
        sa.PrimaryKeyConstraint("job_id", "row_index"),
    )
    op.create_index("ix_enrichment_row_job_person", "enrichment_row", ["job_id", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_enrichment_row_job_person", table_name="enrichment_row")
    op.drop_table("enrichment_row")
    op.drop_index("ix_enrichment_job_team_fingerprint", table_name="enrichment_job")
    op.drop_table("enrichment_job")
