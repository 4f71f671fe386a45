"""Request and response shapes of API v1 (pydantic): APIFlask validates requests and writes the
OpenAPI 3.1 document from them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.api.account import MAX_USAGE_PAGE
from core.api.contacts import MAX_ID
from core.api.people import MAX_BULK_PEOPLE
from core.team_contacts.models import (
    DEFAULT_PAGE_SIZE,
    MAX_LIST_NAME_CHARS,
    MAX_PAGE_SIZE,
    MAX_SELECTION_IDS,
    MAX_TEXT_CHARS,
)

# Text without NUL (PostgreSQL text cannot hold it) and bounded.
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_NO_NUL)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=_NO_NUL)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=_NO_NUL)]
RevealKind = Literal["email", "mobile"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatchIn(_In):
    """Any identifier: `id`; or `email`; or `linkedin_url`; or a name (`name`, or `first_name` and
    `last_name`) with `company` or `domain`. `reveal` chooses what to access (default: email)."""

    id: int | None = Field(default=None, ge=1, le=2**53)  # larger than any id: 404, not an error
    email: Email | None = None
    linkedin_url: Url | None = None
    name: Name | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    company: Name | None = None
    domain: Name | None = None
    reveal: list[RevealKind] = Field(default_factory=lambda: ["email"], max_length=2)


class BulkMatchIn(_In):
    people: list[MatchIn] = Field(min_length=1, max_length=MAX_BULK_PEOPLE)


class UsageQuery(_In):
    since: datetime | None = None
    until: datetime | None = None
    member: Email | None = None
    feature: Literal["slack", "sheets", "csv", "api", "cli"] | None = None
    category: Literal["email", "mobile", "enrichment", "export", "api", "ai"] | None = None
    include_refunds: bool = True
    limit: int = Field(default=50, ge=1, le=MAX_USAGE_PAGE)
    cursor: Annotated[str, StringConstraints(max_length=512, pattern=_NO_NUL)] | None = None


class PersonOut(BaseModel):
    id: int
    name: str
    first_name: str | None
    last_name: str | None
    title: str | None
    company: str | None
    domain: str | None
    location: str | None
    linkedin_url: str | None


class EmailOut(BaseModel):
    address: str
    status: str
    reasons: list[str]
    score: int
    checked_at: datetime | None


class PhoneOut(BaseModel):
    e164: str
    status: str
    line_type: str | None


class ItemError(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    pointer: str | None = None
    kind: str | None = None


class MatchData(BaseModel):
    person: PersonOut
    email: EmailOut | None
    office_phone: PhoneOut | None
    mobile_phones: list[PhoneOut]
    credits_charged: int
    already_accessed: bool
    revealed: list[str]
    errors: list[ItemError]


class ChargeMeta(BaseModel):
    credits_charged: int


class MatchOut(BaseModel):
    data: MatchData
    meta: ChargeMeta


class BulkItem(BaseModel):
    index: int
    ok: bool
    data: MatchData | None
    error: ItemError | None


class BulkMeta(BaseModel):
    credits_charged: int
    matched: int
    failed: int


class BulkMatchOut(BaseModel):
    data: list[BulkItem]
    meta: BulkMeta


class LotOut(BaseModel):
    id: int
    source: str
    amount_credits: int
    remaining_credits: int
    expires_at: datetime | None


class CreditsData(BaseModel):
    available_credits: int
    held_credits: int
    lots: list[LotOut]
    cycle_starts_at: datetime
    cycle_ends_at: datetime


class EmptyMeta(BaseModel):
    pass


class CreditsOut(BaseModel):
    data: CreditsData
    meta: EmptyMeta


class UsageEntryOut(BaseModel):
    id: int
    date: datetime
    feature: str | None
    category: str | None
    action: str | None
    description: str | None
    credits: int
    data_requested: str | None
    user: str | None
    refund: bool


class PageMeta(BaseModel):
    next_cursor: str | None


class UsageOut(BaseModel):
    data: list[UsageEntryOut]
    meta: PageMeta


class JobQuery(_In):
    """Options as in `tributary enrich`: what to find, the spend cap, column overrides
    (`map=Column=field,Other=field`), a label."""

    email: bool = True
    mobile: bool = False
    max_credits: int | None = Field(default=None, ge=0, le=10**9)
    map: Annotated[str, StringConstraints(max_length=2000, pattern=_NO_NUL)] | None = None
    label: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_NO_NUL)] = "api"
    webhook_url: Url | None = None


class JobRowsIn(_In):
    rows: list[dict[str, Annotated[str, StringConstraints(max_length=2048, pattern=_NO_NUL)] | None]] = Field(
        min_length=1, max_length=10_000
    )


class JobProgressOut(BaseModel):
    total_rows: int | None
    done_rows: int
    matched_rows: int
    found_rows: int
    error_rows: int


class JobOut(BaseModel):
    id: int
    status: str
    label: str
    want_email: bool
    want_mobile: bool
    max_credits: int | None
    credits_charged: int
    progress: JobProgressOut
    created_at: datetime
    finished_at: datetime | None


class EstimateOut(BaseModel):
    rows: int
    rows_with_errors: int
    matched_rows: int
    distinct_people: int
    already_paid_emails: int
    already_paid_mobiles: int
    max_credits: int
    expected_credits: int


class JobCreatedMeta(BaseModel):
    cost_preview: EstimateOut


class JobCreatedOut(BaseModel):
    data: JobOut
    meta: JobCreatedMeta


class JobViewOut(BaseModel):
    data: JobOut
    meta: EmptyMeta


class VerifyIn(_In):
    emails: list[Email] = Field(min_length=1, max_length=100)


class VerifyItem(BaseModel):
    email: str
    normalized: str | None
    status: str
    reasons: list[str]
    score: int
    checked_at: datetime
    mx: str | None
    catch_all: bool | None
    suggestion: str | None
    detail: str | None
    evidence: list[dict]
    charged: bool


class VerifyMeta(BaseModel):
    credits_charged: int
    price_credits: int


class VerifyOut(BaseModel):
    data: list[VerifyItem]
    meta: VerifyMeta


# ---- team contacts, lists, exports --------------------------------------------------------------

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Choices = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]


class ContactFilterIn(_In):
    """All conditions must hold. Choices are comma-separated: `email_status=verified,accept_all`."""

    email_status: Choices | None = None
    has_phone: bool | None = None
    line_type: Choices | None = None
    owner: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_NUL)] | None = Field(
        default=None, description="`me`, `none` (unowned), or a member's email or id"
    )
    account_id: Id | None = None
    account_owner: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_NUL)] | None = Field(
        default=None, description="the owner of the contact's account: `me`, or a member's email or id"
    )
    company: Name | None = Field(default=None, description="company name or domain (exact, any case)")
    saved_since: datetime | None = None
    saved_until: datetime | None = None
    source: Choices | None = None
    list_id: Id | None = None
    q: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=_NO_NUL)] | None = Field(
        default=None, description="free text: part of the name or the company"
    )


class ContactsQuery(ContactFilterIn):
    sort: Literal["saved_desc", "saved_asc", "name"] = "saved_desc"
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: Annotated[str, StringConstraints(max_length=512, pattern=_NO_NUL)] | None = None


class SelectionIn(_In):
    """Which contacts: `contact_ids`, or a `filter` (one of them)."""

    contact_ids: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_SELECTION_IDS)
    filter: ContactFilterIn | None = None


class AssignIn(SelectionIn):
    owner: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_NUL)] = Field(
        description="the new owner: `me`, or a member's email or id"
    )


class AccountFilterIn(_In):
    """All conditions must hold."""

    owner: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_NUL)] | None = Field(
        default=None, description="`me`, `none` (unowned), or a member's email or id"
    )
    source: Choices | None = None
    q: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=_NO_NUL)] | None = Field(
        default=None, description="free text: part of the company's name or domain"
    )


class AccountsQuery(AccountFilterIn):
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: Annotated[str, StringConstraints(max_length=512, pattern=_NO_NUL)] | None = None


class AssignAccountsIn(_In):
    """Which accounts: `account_ids`, or a `filter` (one of them); and the new owner."""

    account_ids: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_SELECTION_IDS)
    filter: AccountFilterIn | None = None
    owner: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_NUL)] = Field(
        description="the new owner: `me`, or a member's email or id"
    )


class AccountOut(BaseModel):
    id: int
    name: str
    domain: str | None
    owner_member_id: int | None
    owner_email: str | None
    source: str
    saved_at: datetime
    contacts: int


class AccountsOut(BaseModel):
    data: list[AccountOut]
    meta: PageMeta


class AccountViewOut(BaseModel):
    data: AccountOut
    meta: EmptyMeta


class ListIn(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LIST_NAME_CHARS, pattern=_NO_NUL)]


class ExportIn(_In):
    """A `filter`, a `list_id`, or both (the list's contacts the filter selects); nothing: all."""

    filter: ContactFilterIn | None = None
    list_id: Id | None = None
    max_credits: int | None = Field(default=None, ge=0, le=10**9)


class ContactPhoneOut(BaseModel):
    e164: str
    kind: str
    line_type: str | None
    status: str


class ContactOut(BaseModel):
    id: int
    person_id: int
    name: str
    title: str | None
    account_id: int | None
    company: str | None
    domain: str | None
    email: str | None
    email_status: str
    phones: list[ContactPhoneOut]
    owner_member_id: int | None
    owner_email: str | None
    source: str
    saved_at: datetime
    linkedin_url: str | None
    location: str | None
    lists: list[str]
    job_change_on: date | None = None  # the person moved to `company` on this day, after the team saved them


class ContactsOut(BaseModel):
    data: list[ContactOut]
    meta: PageMeta


class ContactViewOut(BaseModel):
    data: ContactOut
    meta: EmptyMeta


class BulkOut(BaseModel):
    matched: int
    changed: int


class BulkResultOut(BaseModel):
    data: BulkOut
    meta: EmptyMeta


class ListOut(BaseModel):
    id: int
    name: str
    contacts: int
    created_at: datetime


class ListViewOut(BaseModel):
    data: ListOut
    meta: EmptyMeta


class ListsOut(BaseModel):
    data: list[ListOut]
    meta: EmptyMeta


class ExportPreviewData(BaseModel):
    contacts: int
    net_new: int
    price_credits: int
    credits: int


class ExportPreviewOut(BaseModel):
    data: ExportPreviewData
    meta: EmptyMeta
