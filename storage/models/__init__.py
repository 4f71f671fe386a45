"""All tables, imported so that `SQLModel.metadata` knows them (Alembic reads it)."""

from storage.models.accounts import BillingCycle, Member, Plan, Team
from storage.models.contacts import Company, DataRequest, EmailAddress, Person, Phone, TeamContact
from storage.models.ledger import (
    CreditLot,
    HoldAllocation,
    LedgerAccount,
    LedgerHold,
    LedgerRejection,
    LedgerTransfer,
    ScheduledRefund,
)

__all__ = [
    "BillingCycle",
    "Company",
    "CreditLot",
    "DataRequest",
    "EmailAddress",
    "HoldAllocation",
    "LedgerAccount",
    "LedgerHold",
    "LedgerRejection",
    "LedgerTransfer",
    "Member",
    "Person",
    "Phone",
    "Plan",
    "ScheduledRefund",
    "Team",
    "TeamContact",
]
