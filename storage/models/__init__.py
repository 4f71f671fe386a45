"""All tables, imported so that `SQLModel.metadata` knows them (Alembic reads it)."""

from storage.models.accounts import BillingCycle, Member, Plan, Team
from storage.models.contacts import Company, DataRequest, EmailAddress, Person, Phone, TeamContact
from storage.models.enrichment import EnrichmentJob, EnrichmentRow
from storage.models.ledger import (
    CreditLot,
    HoldAllocation,
    LedgerAccount,
    LedgerHold,
    LedgerRejection,
    LedgerTransfer,
    ScheduledRefund,
)
from storage.models.verification import EmailVerification

__all__ = [
    "BillingCycle",
    "Company",
    "CreditLot",
    "DataRequest",
    "EmailAddress",
    "EmailVerification",
    "EnrichmentJob",
    "EnrichmentRow",
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
