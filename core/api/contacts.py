"""Team contacts, lists and exports for an API caller: the same services the CLI and Slack use, acting
as the key's member. Every id is looked up within the caller's team (another team's id: not found);
the assignment rule is core's (core/team_contacts/rules.py); exports are charged net-new per contact
with feature `api`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from core.actors import require_spend
from core.api.keys import ApiCaller
from core.errors import InvalidInput, NotFound
from core.team_contacts.accounts import TeamAccounts
from core.team_contacts.export import ContactExports, ExportCharge
from core.team_contacts.lists import ContactLists
from core.team_contacts.models import (
    AccountFilter,
    AccountPage,
    AccountSelection,
    AccountView,
    BulkResult,
    ContactFilter,
    ContactPage,
    ContactView,
    ExportPreview,
    ListInfo,
    PageRequest,
    Selection,
)
from core.team_contacts.service import TeamContacts
from storage.models.enums import ContactSource, EmailStatus, Feature

# contact, list and member ids are 32-bit INTEGER columns: a larger id names nothing.
MAX_ID = 2**31 - 1
OWNER_ME, OWNER_NONE = "me", "none"


@dataclass(frozen=True)
class ContactQuery:
    """A filter as the API's parameters give it: comma-separated choices, an owner reference."""

    email_status: str | None = None  # comma-separated EmailStatus values
    has_phone: bool | None = None
    line_type: str | None = None  # comma-separated
    owner: str | None = None  # "me", "none", a member's email or id
    account_id: int | None = None
    company: str | None = None
    saved_since: datetime | None = None  # inclusive
    saved_until: datetime | None = None  # exclusive
    source: str | None = None  # comma-separated ContactSource values
    list_id: int | None = None
    text: str | None = None
    account_owner: str | None = None  # "me", a member's email or id: the owner of the contact's account


def _choices(value: str | None, vocabulary, field: str) -> tuple:
    out = []
    for part in (value or "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            out.append(vocabulary(part))
        except ValueError:
            allowed = ", ".join(v.value for v in vocabulary)
            raise InvalidInput(f"{field}: {part!r} is not one of {allowed}") from None
    return tuple(out)


@dataclass
class ApiContacts:
    contacts: TeamContacts
    lists: ContactLists
    exports: ContactExports
    team_accounts: TeamAccounts | None = None

    # ---- filters ------------------------------------------------------------------------------

    def member_id(self, caller: ApiCaller, ref: str, field: str) -> int:
        """A member of the caller's team by email or id; anyone else is an input error."""
        ref = ref.strip()
        if ref.lower() == OWNER_ME:
            return caller.member.id
        key: int | str = int(ref) if ref.isascii() and ref.isdigit() and int(ref) <= MAX_ID else ref
        try:
            return self.contacts.accounts.member(key, caller.team.id).id
        except NotFound:
            raise InvalidInput(f"{field}: {ref!r} is no member of this team") from None

    def account_filter(
        self, caller: ApiCaller, owner: str | None, source: str | None, text: str | None
    ) -> AccountFilter:
        f = AccountFilter(sources=_choices(source, ContactSource, "source"), text=text)
        if owner is not None:
            if owner.strip().lower() == OWNER_NONE:
                return replace(f, unowned=True)
            return replace(f, owner_ids=(self.member_id(caller, owner, "owner"),))
        return f

    def filter(self, caller: ApiCaller, query: ContactQuery) -> ContactFilter:
        f = ContactFilter(
            email_statuses=_choices(query.email_status, EmailStatus, "email_status"),
            has_phone=query.has_phone,
            line_types=tuple(p.strip().lower() for p in (query.line_type or "").split(",") if p.strip()),
            account_id=query.account_id,
            company=query.company,
            saved_from=_aware(query.saved_since),
            saved_to=_aware(query.saved_until),
            sources=_choices(query.source, ContactSource, "source"),
            text=query.text,
            list_id=query.list_id,
        )
        if query.account_owner is not None:
            f = replace(f, account_owner_ids=(self.member_id(caller, query.account_owner, "account_owner"),))
        if query.owner is not None:
            if query.owner.strip().lower() == OWNER_NONE:
                f = replace(f, unowned=True)
            else:
                f = replace(f, owner_ids=(self.member_id(caller, query.owner, "owner"),))
        return f

    def selection(self, caller: ApiCaller, contact_ids: list[int] | None, query: ContactQuery | None) -> Selection:
        if bool(contact_ids) == (query is not None):
            raise InvalidInput("contact_ids: give contact_ids or a filter (one of them)")
        if query is not None:
            return Selection(filter=self.filter(caller, query))
        return Selection(contact_ids=tuple(contact_ids or ()))

    # ---- contacts -----------------------------------------------------------------------------

    def find(self, caller: ApiCaller, f: ContactFilter, page: PageRequest) -> ContactPage:
        return self.contacts.find(caller.member, f, page)

    def show(self, caller: ApiCaller, contact_id: int) -> ContactView:
        if not 1 <= contact_id <= MAX_ID:
            raise NotFound(f"unknown contact {contact_id}")
        return self.contacts.show(caller.member, contact_id)

    def assign(self, caller: ApiCaller, owner: str, selection: Selection) -> BulkResult:
        return self.contacts.assign(caller.member, self.member_id(caller, owner, "owner"), selection)

    # ---- accounts -----------------------------------------------------------------------------

    def _accounts(self) -> TeamAccounts:
        if self.team_accounts is None:
            raise NotFound("accounts: not served here")
        return self.team_accounts

    def find_accounts(self, caller: ApiCaller, f: AccountFilter, page: PageRequest) -> AccountPage:
        return self._accounts().find(caller.member, f, page)

    def show_account(self, caller: ApiCaller, account_id: int) -> AccountView:
        if not 1 <= account_id <= MAX_ID:
            raise NotFound(f"unknown account {account_id}")
        return self._accounts().show(caller.member, account_id)

    def assign_accounts(self, caller: ApiCaller, owner: str, selection: AccountSelection) -> BulkResult:
        return self._accounts().assign(caller.member, self.member_id(caller, owner, "owner"), selection)

    # ---- lists --------------------------------------------------------------------------------

    def all_lists(self, caller: ApiCaller) -> list[ListInfo]:
        return self.lists.all(caller.member)

    def create_list(self, caller: ApiCaller, name: str) -> ListInfo:
        return self.lists.create(caller.member, name)

    def get_list(self, caller: ApiCaller, list_id: int) -> ListInfo:
        return self.lists.get(caller.member, _list_ref(list_id))

    def add_to_list(self, caller: ApiCaller, list_id: int, selection: Selection) -> BulkResult:
        return self.lists.add(caller.member, _list_ref(list_id), selection)

    def remove_from_list(self, caller: ApiCaller, list_id: int, selection: Selection) -> BulkResult:
        return self.lists.remove(caller.member, _list_ref(list_id), selection)

    # ---- exports ------------------------------------------------------------------------------

    def preview(self, caller: ApiCaller, f: ContactFilter) -> ExportPreview:
        return self.exports.preview(caller.member, f)

    def charge_export(self, caller: ApiCaller, f: ContactFilter, max_credits: int | None) -> ExportCharge:
        # The rule Slack's export button is guarded by (once house's ApiCaller.actor lands: use it).
        require_spend(caller.actor)
        return self.exports.charge(caller.member, f, feature=Feature.API, max_credits=max_credits)

    def stream_export(self, caller: ApiCaller, export_id: int) -> Iterator[bytes]:
        """The CSV of an export already charged (a replay streams it again, charging nothing)."""
        if not 1 <= export_id <= MAX_ID:
            raise NotFound(f"unknown export {export_id}")
        return self.exports.stream(caller.member, export_id)


def _aware(when: datetime | None) -> datetime | None:
    """A time without a zone is UTC (so a naive and an aware bound compare)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _list_ref(list_id: int) -> int:
    if not 1 <= list_id <= MAX_ID:
        raise NotFound(f"unknown list {list_id}")
    return list_id
