"""email verification: append-only history of email checks (freshness window)

Revision ID: 0002_email_verification
Revises: 0001_foundation
Create Date: 2026-11-23 16:50:43.704318
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002_email_verification'
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_verification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('mx_host', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('catch_all', sa.Boolean(), nullable=True),
    sa.Column('suggestion', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.create_index('ix_email_verification_address_checked_at', ['address', 'checked_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.drop_index('ix_email_verification_address_checked_at')

    op.drop_table('email_verification')
