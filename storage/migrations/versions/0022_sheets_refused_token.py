"""sheets_job: the SHA-256 of the stored token and of the last token Google refused

Revision ID: 0022_sheets_refused_token
Revises: 0021_imap_uids
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0022_sheets_refused_token"
down_revision: str | None = "0021_imap_uids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sheets_job") as batch:
        batch.add_column(sa.Column("token_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("refused_token_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sheets_job") as batch:
        batch.drop_column("refused_token_sha256")
        batch.drop_column("token_sha256")
