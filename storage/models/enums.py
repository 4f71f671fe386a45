"""Vocabularies stored in columns. Kept as plain strings in the database (portable, readable)."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class AccountKind(StrEnum):
    WALLET = "wallet"  # the team's credits
    ISSUANCE = "issuance"  # where granted credits come from
    SPEND = "spend"  # where spent credits go
    REFUND = "refund"  # where refunded credits come from
    EXPIRY = "expiry"  # where expired credits go


class TransferKind(StrEnum):
    GRANT = "grant"
    SPEND = "spend"
    HOLD = "hold"  # pending: reserves credits
    POST = "post"  # settles (part of) a hold
    VOID = "void"  # releases (the rest of) a hold
    HOLD_EXPIRE = "hold_expire"  # a hold that timed out releases itself
    EXPIRE = "expire"
    REFUND = "refund"


class LotSource(StrEnum):
    ALLOTMENT = "allotment"  # the plan's credits for one billing cycle
    TOPUP = "topup"  # a purchased pack or an admin grant
    REFUND = "refund"  # bounce refunds granted at a cycle start


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class Category(StrEnum):
    EMAIL = "email"
    MOBILE = "mobile"
    ENRICHMENT = "enrichment"
    EXPORT = "export"
    API = "api"
    AI = "ai"


class Feature(StrEnum):
    SLACK = "slack"
    SHEETS = "sheets"
    CSV = "csv"
    API = "api"
    CLI = "cli"
    CRM = "crm"  # a CRM sync's data requests


class ContactSource(StrEnum):
    """Where a team contact came from (the front end that accessed it, or the inflow that brought it)."""

    SLACK = "slack"
    SHEETS = "sheets"
    CSV = "csv"
    API = "api"
    CRM = "crm"
    CLI = "cli"


class DataKind(StrEnum):
    EMAIL = "email"
    MOBILE = "mobile"


class DataRequestStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    CHARGED = "charged"  # something chargeable was found and paid for: settled for good
    FREE = "free"  # found, but not chargeable (e.g. accept_all email)
    NOT_FOUND = "not_found"


class EmailStatus(StrEnum):
    VERIFIED = "verified"
    LIKELY_TO_ENGAGE = "likely_to_engage"
    ACCEPT_ALL = "accept_all"
    UNVERIFIED = "unverified"
    UPDATE_REQUIRED = "update_required"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


CHARGEABLE_EMAIL_STATUSES = frozenset({EmailStatus.VERIFIED, EmailStatus.LIKELY_TO_ENGAGE})


class PhoneStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class PhoneKind(StrEnum):
    MOBILE = "mobile"
    OFFICE = "office"
