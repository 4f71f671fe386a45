"""The credit ledger: double-entry accounts, immutable transfers, holds and expiring credit lots.

Transfers are append-only. Every other ledger table is state derived from transfers and kept
beside them in the same transaction (account totals, lot consumption, hold status), the way
TigerBeetle keeps `debits_posted` on the account while the transfer log stays the truth.
"""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.limits import MAX_ACTION_CHARS, MAX_HEX_DIGEST_CHARS, MAX_TEXT_CHARS
from storage.timeutil import utcnow


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_account"
    __table_args__ = (
        UniqueConstraint("team_id", "kind", name="uq_account_team_kind"),
        # A wallet's available credits (posted in, minus posted out, minus held) never go below zero.
        CheckConstraint(
            "kind <> 'wallet' OR credits_posted - debits_posted - debits_pending >= 0",
            name="ck_wallet_available_not_negative",
        ),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name="ck_account_totals_not_negative",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    kind: str = Field(max_length=16)
    debits_posted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    credits_posted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    debits_pending: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    credits_pending: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Wallets only: the earliest instant at which a hold times out or a lot expires, so a write
    # can tell from the row it already locked whether anything needs sweeping.
    next_sweep_at: datetime | None = None


class LedgerTransfer(SQLModel, table=True):
    __tablename__ = "ledger_transfer"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key", name="uq_transfer_team_key"),
        CheckConstraint("amount > 0", name="ck_transfer_amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="ck_transfer_distinct_accounts"),
        Index("ix_transfer_team_effective", "team_id", "effective_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    idempotency_key: str = Field(max_length=200)
    # sha256 of the request body, to tell a replay from a conflicting reuse of the key.
    body_hash: str = Field(max_length=MAX_HEX_DIGEST_CHARS)
    kind: str = Field(max_length=16)
    debit_account_id: int = Field(foreign_key="ledger_account.id")
    credit_account_id: int = Field(foreign_key="ledger_account.id")
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    # For post / void / hold_expire: the pending transfer (hold) this one resolves.
    hold_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("ledger_transfer.id")))
    # What the credits were for (usage log). Empty for grants and expiries.
    category: str | None = Field(default=None, max_length=16)
    feature: str | None = Field(default=None, max_length=16)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    action: str | None = Field(default=None, max_length=MAX_ACTION_CHARS)
    description: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    data_requested: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    created_at: datetime = Field(default_factory=utcnow)
    # When the movement took effect: equals created_at except for expiries recorded after the fact.
    effective_at: datetime = Field(default_factory=utcnow)


class LedgerHold(SQLModel, table=True):
    """The state of one pending transfer (a hold). Its id is the pending transfer's id."""

    __tablename__ = "ledger_hold"
    __table_args__ = (
        Index("ix_hold_team_status_expiry", "team_id", "status", "expires_at"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="ck_hold_posted_range"),
    )

    id: int = Field(sa_column=Column(BigInteger, ForeignKey("ledger_transfer.id"), primary_key=True))
    team_id: int = Field(foreign_key="team.id")
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    posted_amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    status: str = Field(max_length=16)
    expires_at: datetime
    resolved_at: datetime | None = None


class CreditLot(SQLModel, table=True):
    """Credits from one grant, with their expiry. Spending takes the soonest-expiring first."""

    __tablename__ = "credit_lot"
    __table_args__ = (
        Index("ix_lot_team_expiry", "team_id", "expires_at"),
        CheckConstraint("spent >= 0 AND expired >= 0 AND spent + expired <= amount", name="ck_lot_within"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    grant_transfer_id: int = Field(sa_column=Column(BigInteger, ForeignKey("ledger_transfer.id")))
    source: str = Field(max_length=16)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    spent: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    expired: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # None: never expires (rollover plans' allotments).
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class HoldAllocation(SQLModel, table=True):
    """Which lots a hold reserved credits from, so posting spends exactly those."""

    __tablename__ = "hold_allocation"

    hold_id: int = Field(sa_column=Column(BigInteger, ForeignKey("ledger_hold.id"), primary_key=True))
    lot_id: int = Field(foreign_key="credit_lot.id", primary_key=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))


class LedgerRejection(SQLModel, table=True):
    """A key whose first attempt failed for lack of credits: it can never succeed later."""

    __tablename__ = "ledger_rejection"
    __table_args__ = (UniqueConstraint("team_id", "idempotency_key", name="uq_rejection_team_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    idempotency_key: str = Field(max_length=200)
    body_hash: str = Field(max_length=MAX_HEX_DIGEST_CHARS)
    reason: str = Field(max_length=MAX_ACTION_CHARS)
    available_credits: int = Field(sa_column=Column(BigInteger, nullable=False))
    requested_credits: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ScheduledRefund(SQLModel, table=True):
    """A refund earned in one billing cycle and granted when the next one starts."""

    __tablename__ = "scheduled_refund"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key", name="uq_refund_team_key"),
        CheckConstraint("amount > 0", name="ck_refund_amount_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    idempotency_key: str = Field(max_length=200)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    earned_at: datetime
    category: str | None = Field(default=None, max_length=16)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    description: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    data_requested: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    granted_transfer_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("ledger_transfer.id"))
    )
    granted_at: datetime | None = None
