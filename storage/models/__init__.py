"""All tables, imported so that `SQLModel.metadata` knows them (Alembic reads it)."""

from storage.models.access import RateWindow, SlackConnectCode
from storage.models.accounts import BillingCycle, Member, Plan, Team
from storage.models.api import ApiIdempotency, ApiKey
from storage.models.contacts import (
    Company,
    ContactExport,
    ContactExportItem,
    ContactList,
    ContactListEntry,
    DataRequest,
    EmailAddress,
    ExportedPerson,
    Person,
    Phone,
    TeamContact,
)
from storage.models.contributor import CompanyNameKey, ContactCandidate, ContributionObservation, PersonNameKey
from storage.models.crm import CrmConnection, CrmRecord, CrmWrite
from storage.models.digests import DigestDeliveryRecord, DigestPreference
from storage.models.engagement import EmailEngagement
from storage.models.enrichment import EnrichmentJob, EnrichmentRow
from storage.models.job_changes import EmploymentHistory, JobChangeNotice
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
from storage.models.mailboxes import CandidateSource, DomainEmailProvider, MailboxConnection, MailboxPrivateEntry
from storage.models.sending import (
    Bounce,
    BounceIntake,
    EmailSend,
    OutboxNotice,
    RefundDecision,
    SmtpRelay,
    TeamWebhookSecret,
)
from storage.models.sheets import SheetsJob, SheetsRow, SheetsTeamDomain
from storage.models.slack import SlackWorkspace, slack_bots, slack_installations, slack_oauth_states
from storage.models.team_accounts import TeamAccount
from storage.models.verification import EmailVerification
from storage.models.waterfall import SourceCall, WaterfallConfig

__all__ = [
    "ApiIdempotency",
    "ApiKey",
    "EnrichmentChunk",
    "EnrichmentClaim",
    "EnrichmentJobInput",
    "BillingCycle",
    "Bounce",
    "BounceIntake",
    "CandidateSource",
    "Company",
    "CompanyNameKey",
    "ContactExport",
    "ContactExportItem",
    "ContactList",
    "ContactListEntry",
    "ContactCandidate",
    "ContributionObservation",
    "CreditLot",
    "CrmConnection",
    "CrmRecord",
    "CrmWrite",
    "DataRequest",
    "DigestDeliveryRecord",
    "DigestPreference",
    "DomainEmailProvider",
    "EmailAddress",
    "EmailEngagement",
    "EmploymentHistory",
    "JobChangeNotice",
    "EmailSend",
    "EmailVerification",
    "EnrichmentJob",
    "EnrichmentRow",
    "ExportedPerson",
    "HoldAllocation",
    "LedgerAccount",
    "LedgerHold",
    "LedgerRejection",
    "LedgerTransfer",
    "MailboxConnection",
    "MailboxPrivateEntry",
    "Member",
    "OutboxNotice",
    "Person",
    "PersonNameKey",
    "Phone",
    "Plan",
    "RateWindow",
    "RefundDecision",
    "ScheduledRefund",
    "SheetsJob",
    "SheetsRow",
    "SheetsTeamDomain",
    "SlackConnectCode",
    "SlackWorkspace",
    "SmtpRelay",
    "SourceCall",
    "Team",
    "TeamAccount",
    "TeamContact",
    "TeamWebhookSecret",
    "WaterfallConfig",
    "slack_bots",
    "slack_installations",
    "slack_oauth_states",
]
