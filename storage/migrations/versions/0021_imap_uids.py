"""mailbox_connection: UIDVALIDITY and last UID as BIGINT (IMAP's are unsigned 32-bit)

Revision ID: 0021_imap_uids
Revises: 0020_mailboxes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_imap_uids"
down_revision: str | None = "0020_mailboxes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox_connection") as batch:
        batch.alter_column("uid_validity", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)
        batch.alter_column("last_uid", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("mailbox_connection") as batch:
        batch.alter_column("last_uid", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
        batch.alter_column("uid_validity", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
