"""Contact filters as SQL, the keyset cursor, and the `key:value` filter words front ends accept.

A contact's email status is its person's best email in the shared table (likely_to_engage before
verified before accept_all ...), read by a correlated subquery on every query: a bounce that
downgrades the address moves the contact out of "verified" at once. No email at all: unavailable."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime

from sqlalchemy import BindParameter, ColumnElement, bindparam, case, exists, func, or_, select

from core.errors import InvalidInput
from core.team_contacts.models import MAX_TEXT_CHARS, ContactFilter, Sort
from storage.models import Company, ContactListEntry, EmailAddress, Person, Phone, TeamAccount, TeamContact
from storage.models.enums import ContactSource, EmailStatus, PhoneStatus

TC = TeamContact.__table__
P = Person.__table__
C = Company.__table__
E = EmailAddress.__table__
PH = Phone.__table__
LE = ContactListEntry.__table__
TA = TeamAccount.__table__
_FIELDS = tuple(f.name for f in fields(ContactFilter))

# Best first: the status a contact shows is its person's best address's.
EMAIL_STATUS_RANK: tuple[EmailStatus, ...] = (
    EmailStatus.LIKELY_TO_ENGAGE,
    EmailStatus.VERIFIED,
    EmailStatus.ACCEPT_ALL,
    EmailStatus.UNVERIFIED,
    EmailStatus.UNKNOWN,
    EmailStatus.UPDATE_REQUIRED,
    EmailStatus.INVALID,
)
_RANK = case({s.value: i for i, s in enumerate(EMAIL_STATUS_RANK)}, value=E.c.status, else_=len(EMAIL_STATUS_RANK))
BEST_EMAIL_ID = select(E.c.id).where(E.c.person_id == TC.c.person_id).order_by(_RANK, E.c.id).limit(1).scalar_subquery()
# The best address joined by id: one index probe per contact, its status then filtered and shown.
BE = E.alias("best_email")
BEST_EMAIL_STATUS = func.coalesce(BE.c.status, EmailStatus.UNAVAILABLE.value)
BASE_FROM = TC.join(P, P.c.id == TC.c.person_id).outerjoin(C, C.c.id == P.c.company_id)
FROM = BASE_FROM.outerjoin(BE, BE.c.id == BEST_EMAIL_ID)


def _like_escaped(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _phone_exists(*conditions: ColumnElement) -> ColumnElement:
    return exists().where(PH.c.person_id == TC.c.person_id, PH.c.status != PhoneStatus.INVALID.value, *conditions)


def _in(name: str, values: list) -> list[BindParameter]:
    """One named parameter per value (`owner_ids_0`, ...): the count is part of the filter's shape,
    so a cached statement needs no per-call re-rendering of an expanding IN."""
    return [bindparam(f"{name}_{i}", value) for i, value in enumerate(values)]


def conditions(team_id: int, f: ContactFilter) -> list[ColumnElement]:
    """The WHERE of a filter over FROM. Every value is a named bind parameter (named after its field)
    so a statement built once for a filter's shape runs for any values (see `bind_values`)."""
    v = bind_values(team_id, f)
    out: list[ColumnElement] = [TC.c.team_id == bindparam("team_id", team_id)]
    if f.email_statuses:
        out.append(BEST_EMAIL_STATUS.in_(_in("email_statuses", v["email_statuses"])))
    if f.has_phone is True:
        out.append(_phone_exists())
    elif f.has_phone is False:
        out.append(~_phone_exists())
    if f.line_types:
        out.append(_phone_exists(PH.c.line_type.in_(_in("line_types", v["line_types"]))))
    if f.owner_ids:
        out.append(TC.c.owner_member_id.in_(_in("owner_ids", v["owner_ids"])))
    if f.unowned:
        out.append(TC.c.owner_member_id.is_(None))
    if f.account_id is not None:
        out.append(P.c.company_id == bindparam("account_id", f.account_id))
    if f.account_owner_ids:
        out.append(
            exists().where(
                TA.c.team_id == TC.c.team_id,
                TA.c.company_id == P.c.company_id,
                TA.c.owner_member_id.in_(_in("account_owner_ids", v["account_owner_ids"])),
            )
        )
    if f.company:
        name = bindparam("company", v["company"])
        out.append(or_(func.lower(C.c.name) == name, C.c.domain == name))
    if f.saved_from is not None:
        out.append(TC.c.created_at >= bindparam("saved_from", f.saved_from))
    if f.saved_to is not None:
        out.append(TC.c.created_at < bindparam("saved_to", f.saved_to))
    if f.sources:
        out.append(TC.c.source.in_(_in("sources", v["sources"])))
    if f.text:
        pattern = bindparam("text", v["text"])
        out.append(
            or_(
                func.lower(P.c.full_name).like(pattern, escape="\\"),
                func.lower(func.coalesce(C.c.name, "")).like(pattern, escape="\\"),
            )
        )
    if f.list_id is not None:
        out.append(exists().where(LE.c.list_id == bindparam("list_id", f.list_id), LE.c.contact_id == TC.c.id))
    return out


def bind_values(team_id: int, f: ContactFilter) -> dict[str, object]:
    """The bind parameters of `conditions(team_id, f)` by name (a choice's values as lists here;
    `flat_values` spreads them into the numbered parameters `_in` names)."""
    v: dict[str, object] = {"team_id": team_id}
    for name in ("email_statuses", "sources"):
        if getattr(f, name):
            v[name] = [s.value for s in getattr(f, name)]
    for name in ("line_types", "owner_ids", "account_owner_ids"):
        if getattr(f, name):
            v[name] = list(getattr(f, name))
    for name in ("account_id", "saved_from", "saved_to", "list_id"):
        if getattr(f, name) is not None:
            v[name] = getattr(f, name)
    if f.company:
        v["company"] = f.company.strip().lower()
    if f.text:
        v["text"] = _like_escaped(f.text.strip().lower())
    return v


def flat_values(team_id: int, f: ContactFilter) -> dict[str, object]:
    """Every bind parameter of `conditions(team_id, f)` by its name in the statement."""
    out: dict[str, object] = {}
    for name, value in bind_values(team_id, f).items():
        if isinstance(value, list):
            out.update((f"{name}_{i}", item) for i, item in enumerate(value))
        else:
            out[name] = value
    return out


def filter_shape(f: ContactFilter) -> tuple:
    """What decides a filter's SQL (which conditions, how many choices), not its values: the key of
    cached statements."""
    return tuple((name, _shape_of(getattr(f, name))) for name in _FIELDS)


def _shape_of(value: object) -> object:
    # Mirrors the tests in `conditions`: a choice by its count, a flag by its value, text by whether
    # it is non-empty, anything else by whether it is given.
    if isinstance(value, tuple):
        return len(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return bool(value)
    return True


def selected_ids(team_id: int, f: ContactFilter):
    """SELECT of the ids of a team's contacts matching `f`."""
    return select(TC.c.id).select_from(from_for(f)).where(*conditions(team_id, f))


def from_for(f: ContactFilter):
    """The joins a filter needs: the best email only when it filters on email status."""
    return FROM if f.email_statuses else BASE_FROM


def check_filter(f: ContactFilter) -> ContactFilter:
    if f.text is not None and len(f.text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text: longer than {MAX_TEXT_CHARS} characters")
    if f.saved_from and f.saved_to and f.saved_from >= f.saved_to:
        raise InvalidInput("saved: the start must be before the end")
    for name in ("saved_from", "saved_to"):
        value = getattr(f, name)
        if value is not None and value.tzinfo is None:
            f = replace(f, **{name: value.replace(tzinfo=UTC)})
    return f


# ---- keyset cursor -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # filters are frozen; a pager asks for the same one page after page
def filter_fingerprint(f: ContactFilter, sort: Sort) -> str:
    body = json.dumps([asdict(f), sort.value], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, key: Sequence[object]) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps({"f": fingerprint, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str, sort: Sort) -> tuple:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["f"] != fingerprint:
            raise InvalidInput("cursor: it belongs to another filter or sort; start from the first page")
        first, contact_id = data["k"]
        if not isinstance(contact_id, int):
            raise ValueError(contact_id)
        if sort in (Sort.SAVED_DESC, Sort.SAVED_ASC):
            first = datetime.fromisoformat(first)
        elif not isinstance(first, str):
            raise ValueError(first)
        return first, contact_id
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this service gave out") from None


def order_and_after(sort: Sort, after: tuple | None) -> tuple[list, list[ColumnElement]]:
    """ORDER BY and the keyset condition for the page after `after` (the last row's sort key)."""
    if sort == Sort.SAVED_DESC:
        order, first, second = [TC.c.created_at.desc(), TC.c.id.desc()], TC.c.created_at, TC.c.id
    elif sort == Sort.SAVED_ASC:
        order, first, second = [TC.c.created_at.asc(), TC.c.id.asc()], TC.c.created_at, TC.c.id
    else:
        order, first, second = [P.c.full_name.asc(), TC.c.id.asc()], P.c.full_name, TC.c.id
    if after is None:
        return order, []
    # Written as a range on the first column plus a tie-break, so both databases seek the index to
    # the cursor instead of scanning from the start (constant time for any page).
    key, last_id = bindparam("after_key", after[0]), bindparam("after_id", after[1])
    if sort == Sort.SAVED_DESC:
        return order, [first <= key, or_(first < key, second < last_id)]
    return order, [first >= key, or_(first > key, second > last_id)]


# ---- filter words (`status:verified owner:@me ...`) -----------------------------------------

FILTER_WORDS = (
    "status:, phone:yes|no, line:, owner:@me|EMAIL|none, account-owner:@me|EMAIL, company:, source:, "
    "saved-from:, saved-to:, list:"
)


def _choices(value: str, vocabulary, what: str) -> tuple:
    out = []
    for part in value.split(","):
        try:
            out.append(vocabulary(part.strip().lower()))
        except ValueError:
            allowed = ", ".join(v.value for v in vocabulary)
            raise InvalidInput(f"{what}: {part!r} is not one of {allowed}") from None
    return tuple(out)


def _date(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_filter_words(
    words: Sequence[str],
    *,
    me_id: int,
    member_id: Callable[[str], int],
    list_id: Callable[[str], int] | None = None,
) -> ContactFilter:
    """`key:value` words to a filter; other words are free text. `member_id`/`list_id` resolve refs
    within the caller's team (raising NotFound)."""
    f = ContactFilter()
    text: list[str] = []
    for word in words:
        key, sep, value = word.partition(":")
        key = key.lower()
        if not sep or key not in _WORD_KEYS:
            text.append(word)
            continue
        if not value:
            raise InvalidInput(f"{key}: needs a value ({key}:...)")
        f = _apply_word(f, key, value, me_id, member_id, list_id)
    if text:
        f = replace(f, text=" ".join(text))
    return check_filter(f)


_WORD_KEYS = {
    "status",
    "phone",
    "line",
    "owner",
    "account-owner",
    "company",
    "source",
    "saved-from",
    "saved-to",
    "list",
}


def _apply_word(f, key, value, me_id, member_id, list_id) -> ContactFilter:
    if key == "status":
        return replace(f, email_statuses=f.email_statuses + _choices(value, EmailStatus, "status"))
    if key == "phone":
        if value.lower() not in ("yes", "no"):
            raise InvalidInput(f"phone: {value!r} is not yes or no")
        return replace(f, has_phone=value.lower() == "yes")
    if key == "line":
        return replace(f, line_types=f.line_types + tuple(v.strip().lower() for v in value.split(",")))
    if key == "owner":
        if value.lower() == "none":
            return replace(f, unowned=True)
        owner = me_id if value.lower() in ("@me", "me") else member_id(value)
        return replace(f, owner_ids=f.owner_ids + (owner,))
    if key == "account-owner":
        owner = me_id if value.lower() in ("@me", "me") else member_id(value)
        return replace(f, account_owner_ids=f.account_owner_ids + (owner,))
    if key == "company":
        return replace(f, company=value)
    if key == "source":
        return replace(f, sources=f.sources + _choices(value, ContactSource, "source"))
    if key == "saved-from":
        return replace(f, saved_from=_date(value, "saved-from"))
    if key == "saved-to":
        return replace(f, saved_to=_date(value, "saved-to"))
    if list_id is None:
        raise InvalidInput("list: not accepted here")
    return replace(f, list_id=list_id(value))
