"""engagement evidence (shared), employment history (shared), job-change notices (team), send engagement marks

Revision ID: 0018_engagement
Revises: 0017_crm
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0018_engagement"
down_revision: str | None = "0017_crm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_engagement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("first_seen_on", sa.Date(), nullable=False),
        sa.Column("last_seen_on", sa.Date(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address", "kind", name="uq_email_engagement_address_kind"),
    )
    op.create_index(op.f("ix_email_engagement_address"), "email_engagement", ["address"], unique=False)
    op.create_table(
        "employment_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("from_on", sa.Date(), nullable=True),
        sa.Column("to_on", sa.Date(), nullable=True),
        sa.Column("evidence", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_employment_history_person_from", "employment_history", ["person_id", "from_on"])
    op.create_table(
        "job_change_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("team_contact_id", sa.Integer(), nullable=False),
        sa.Column("employment_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("outbox_notice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["employment_id"], ["employment_history.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_contact_id"], ["team_contact.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_contact_id", "employment_id", name="uq_job_change_notice_contact_stint"),
    )
    op.create_index("ix_job_change_notice_team_created", "job_change_notice", ["team_id", "created_at"])
    with op.batch_alter_table("email_send") as batch:
        batch.add_column(sa.Column("replied_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("delivery_recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_send") as batch:
        batch.drop_column("delivery_recorded_at")
        batch.drop_column("replied_at")
    op.drop_index("ix_job_change_notice_team_created", table_name="job_change_notice")
    op.drop_table("job_change_notice")
    op.drop_index("ix_employment_history_person_from", table_name="employment_history")
    op.drop_table("employment_history")
    op.drop_index(op.f("ix_email_engagement_address"), table_name="email_engagement")
    op.drop_table("email_engagement")
