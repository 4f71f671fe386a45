"""Typed inputs and outputs of the team-contacts service (what the CLI, Slack and the HTTP API pass
and get back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from storage.models.enums import ContactSource, EmailStatus

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
# Ids named one by one in a bulk call (a bigger selection is a filter or a list).
MAX_SELECTION_IDS = 10_000
MAX_TEXT_CHARS = 200
MAX_LIST_NAME_CHARS = 128


class Sort(StrEnum):
    SAVED_DESC = "saved_desc"  # newest first (default)
    SAVED_ASC = "saved_asc"
    NAME = "name"


@dataclass(frozen=True)
class ContactFilter:
    """All conditions must hold; an empty tuple or None means "any". Statuses are read live."""

    email_statuses: tuple[EmailStatus, ...] = ()
    has_phone: bool | None = None  # a phone that is not invalid
    line_types: tuple[str, ...] = ()  # a phone of one of these line types (not invalid)
    owner_ids: tuple[int, ...] = ()
    unowned: bool = False  # only contacts without an owner
    account_id: int | None = None  # the company
    account_owner_ids: tuple[int, ...] = ()  # the owner of the contact's account (its company)
    company: str | None = None  # company name or domain, case-insensitive, exact
    saved_from: datetime | None = None  # inclusive
    saved_to: datetime | None = None  # exclusive
    sources: tuple[ContactSource, ...] = ()
    text: str | None = None  # substring of the name or the company name, case-insensitive
    list_id: int | None = None  # contacts in this list


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None  # opaque, from the previous page's next_cursor
    sort: Sort = Sort.SAVED_DESC


@dataclass(frozen=True)
class Selection:
    """Which contacts a bulk operation touches: named ids, or a filter (which may name a list)."""

    contact_ids: tuple[int, ...] = ()
    filter: ContactFilter | None = None


@dataclass(frozen=True)
class PhoneView:
    e164: str
    kind: str
    line_type: str | None
    status: str


@dataclass(frozen=True)
class ContactView:
    id: int
    person_id: int
    full_name: str
    title: str | None
    account_id: int | None
    company: str | None
    domain: str | None
    email: str | None
    email_status: EmailStatus
    phones: tuple[PhoneView, ...]
    owner_member_id: int | None
    owner_email: str | None
    source: ContactSource
    saved_at: datetime
    linkedin_url: str | None = None
    location: str | None = None
    lists: tuple[str, ...] = field(default=())
    # Set when the person moved to `company` after the team saved them (core/job_changes): the day.
    job_change_on: date | None = None


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactView]
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class AccountFilter:
    """All conditions must hold; empty means "any"."""

    owner_ids: tuple[int, ...] = ()
    unowned: bool = False
    sources: tuple[ContactSource, ...] = ()
    text: str | None = None  # substring of the company's name or domain, case-insensitive


@dataclass(frozen=True)
class AccountSelection:
    """Which accounts a bulk operation touches: named ids, or a filter."""

    account_ids: tuple[int, ...] = ()
    filter: AccountFilter | None = None


@dataclass(frozen=True)
class AccountView:
    id: int  # the company's id: the `account_id` its contacts carry
    name: str
    domain: str | None
    owner_member_id: int | None
    owner_email: str | None
    source: ContactSource  # of the contact that brought the account
    saved_at: datetime
    contacts: int  # the team's contacts there now


@dataclass(frozen=True)
class AccountPage:
    accounts: list[AccountView]
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class ListInfo:
    id: int
    name: str
    contacts: int
    created_at: datetime


@dataclass(frozen=True)
class BulkResult:
    matched: int  # contacts the selection named
    changed: int  # of those, the ones this call changed


@dataclass(frozen=True)
class ExportPreview:
    contacts: int
    net_new: int  # never exported by this team before: the ones that cost
    price_credits: int  # per net-new contact
    credits: int  # exactly what the export would charge now


@dataclass(frozen=True)
class ExportResult:
    export_id: int
    contacts: int
    net_new: int
    credits_charged: int
    rows_written: int
