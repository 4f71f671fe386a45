"""team accounts: the companies of a team's contacts, each with an owner, a source and the date saved

Existing teams get one account per company of their contacts, taken from the earliest contact saved
there (its owner, creator, source and date).

Revision ID: 0019_accounts
Revises: 0018_engagement
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019_accounts"
down_revision: str | None = "0018_engagement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sqlmodel.sql.sqltypes.UTCDateTime

# The earliest contact per (team, company): a join on the grouped minimum (one pass, not a subquery
# per contact); contacts saved at the same instant tie, and ON CONFLICT keeps the first.
BACKFILL = """
INSERT INTO team_account (team_id, company_id, created_by_member_id, owner_member_id, source, created_at)
SELECT tc.team_id, p.company_id, tc.created_by_member_id, tc.owner_member_id, tc.source, tc.created_at
FROM team_contact tc
JOIN person p ON p.id = tc.person_id
JOIN (
    SELECT tc2.team_id AS team_id, p2.company_id AS company_id, MIN(tc2.created_at) AS first_at
    FROM team_contact tc2 JOIN person p2 ON p2.id = tc2.person_id
    WHERE p2.company_id IS NOT NULL
    GROUP BY tc2.team_id, p2.company_id
) f ON f.team_id = tc.team_id AND f.company_id = p.company_id AND f.first_at = tc.created_at
ORDER BY tc.id
ON CONFLICT (team_id, company_id) DO NOTHING
"""


def upgrade() -> None:
    op.create_table(
        "team_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("created_by_member_id", sa.Integer(), nullable=True),
        sa.Column("owner_member_id", sa.Integer(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", _TS(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["created_by_member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["owner_member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "company_id", name="uq_team_account_team_company"),
    )
    op.create_index("ix_team_account_team_saved", "team_account", ["team_id", "created_at", "id"], unique=False)
    op.create_index(
        "ix_team_account_team_owner_saved",
        "team_account",
        ["team_id", "owner_member_id", "created_at", "id"],
        unique=False,
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_team_account_team_owner_saved", table_name="team_account")
    op.drop_index("ix_team_account_team_saved", table_name="team_account")
    op.drop_table("team_account")
