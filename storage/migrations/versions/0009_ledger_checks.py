"""ledger checks: the database itself refuses a wallet below zero and negative account totals

The ledger keeps these with explicit checks under the wallet lock (core/ledger.py); the CHECK
constraints make a bug or a hand-written UPDATE fail loudly instead of overdrawing a team.
SQLite cannot add a CHECK to a table, so batch mode rebuilds `ledger_account` (env.py turns foreign
keys off for the rebuild and checks every reference before committing).

Revision ID: 0009_ledger_checks
Revises: 0008_slack
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_ledger_checks"
down_revision: str | None = "0008_slack"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WALLET_AVAILABLE = "ck_wallet_available_not_negative"
TOTALS = "ck_account_totals_not_negative"


def upgrade() -> None:
    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.create_check_constraint(
            WALLET_AVAILABLE, "kind <> 'wallet' OR credits_posted - debits_posted - debits_pending >= 0"
        )
        batch_op.create_check_constraint(
            TOTALS, "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_account", schema=None) as batch_op:
        batch_op.drop_constraint(TOTALS, type_="check")
        batch_op.drop_constraint(WALLET_AVAILABLE, type_="check")
