"""All tables, imported so that `SQLModel.metadata` knows them (Alembic reads it)."""

from storage.models.accounts import BillingCycle, Member, Plan, Team
from storage.models.contacts import Company, DataRequest, EmailAddress, Person, Phone, TeamContact
from storage.models.contributor import CompanyNameKey, ContactCandidate, ContributionObservation, PersonNameKey
from storage.models.digests import DigestDeliveryRecord, DigestPreference
from storage.models.enrichment import EnrichmentJob, EnrichmentRow
from storage.models.job_chunks import EnrichmentChunk, EnrichmentClaim, EnrichmentJobInput
from storage.models.ledger import (
    CreditLot,
    HoldAllocation,
    LedgerAccount,
    LedgerHold,
    LedgerRejection,
    LedgerTransfer,
    ScheduledRefund,
)
from storage.models.sending import Bounce, BounceIntake, EmailSend, OutboxNotice, RefundDecision, SmtpRelay
from storage.models.slack import SlackWorkspace, slack_bots, slack_installations, slack_oauth_states
from storage.models.verification import EmailVerification
from storage.models.waterfall import SourceCall, WaterfallConfig

__all__ = [
    "EnrichmentChunk",
    "EnrichmentClaim",
    "EnrichmentJobInput",
    "BillingCycle",
    "Bounce",
    "BounceIntake",
    "Company",
    "CompanyNameKey",
    "ContactCandidate",
    "ContributionObservation",
    "CreditLot",
    "DataRequest",
    "DigestDeliveryRecord",
    "DigestPreference",
    "EmailAddress",
    "EmailSend",
    "EmailVerification",
    "EnrichmentJob",
    "EnrichmentRow",
    "HoldAllocation",
    "LedgerAccount",
    "LedgerHold",
    "LedgerRejection",
    "LedgerTransfer",
    "Member",
    "OutboxNotice",
    "Person",
    "PersonNameKey",
    "Phone",
    "Plan",
    "RefundDecision",
    "ScheduledRefund",
    "SlackWorkspace",
    "SmtpRelay",
    "SourceCall",
    "Team",
    "TeamContact",
    "WaterfallConfig",
    "slack_bots",
    "slack_installations",
    "slack_oauth_states",
]
