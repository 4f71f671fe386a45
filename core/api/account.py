"""GET /credits and GET /usage: the team's wallet, and its usage log a page at a time."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select

from core.accounts import Accounts
from core.errors import InvalidInput, NotFound
from core.ledger import Ledger, LotView
from storage.db import read_transaction
from storage.models import LedgerTransfer, Member
from storage.models.enums import Category, Feature, TransferKind
from storage.timeutil import as_utc, utcnow

_T = LedgerTransfer.__table__
_MEMBER = Member.__table__
# What the usage log shows (as core.ledger.Ledger.usage_log): spend and posted holds, and refunds.
_SPEND_KINDS = (TransferKind.SPEND.value, TransferKind.POST.value)
MAX_USAGE_PAGE = 200
DEFAULT_USAGE_PAGE = 50


@dataclass(frozen=True)
class CreditsView:
    available_credits: int
    held_credits: int
    lots: list[LotView]  # live lots only (credits left to spend)
    cycle_starts_at: datetime
    cycle_ends_at: datetime


@dataclass(frozen=True)
class UsageFilter:
    since: datetime | None = None
    until: datetime | None = None
    member: str | None = None  # an email of the team
    feature: Feature | None = None
    category: Category | None = None
    include_refunds: bool = True
    limit: int = DEFAULT_USAGE_PAGE
    cursor: str | None = None


@dataclass(frozen=True)
class UsageEntry:
    id: int
    date: datetime
    feature: str | None
    category: str | None
    action: str | None
    description: str | None
    credits: int  # positive: spent; negative: refunded
    data_requested: str | None
    user: str | None
    refund: bool


@dataclass(frozen=True)
class UsagePage:
    entries: list[UsageEntry]
    next_cursor: str | None


def credits_view(ledger: Ledger, accounts: Accounts, team_id: int) -> CreditsView:
    balance = ledger.balance(team_id)
    lots = [lot for lot in ledger.lots(team_id) if lot.amount_credits - lot.spent_credits - lot.expired_credits > 0]
    now = utcnow()
    lots = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
    cycle = accounts.current_cycle(team_id)
    return CreditsView(balance.available_credits, balance.held_credits, lots, cycle.starts_at, cycle.ends_at)


def _encode_cursor(when: datetime, transfer_id: int) -> str:
    return base64.urlsafe_b64encode(f"{as_utc(when).isoformat()}|{transfer_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        when, _, tid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return as_utc(datetime.fromisoformat(when)), int(tid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned") from None


def usage_page(engine: Engine, accounts: Accounts, team_id: int, flt: UsageFilter) -> UsagePage:
    """Newest first; `next_cursor` continues after the last entry (stable under new spending)."""
    if not 1 <= flt.limit <= MAX_USAGE_PAGE:
        raise InvalidInput(f"limit: must be between 1 and {MAX_USAGE_PAGE}")
    kinds = list(_SPEND_KINDS) + ([TransferKind.REFUND.value] if flt.include_refunds else [])
    where = [_T.c.team_id == team_id, _T.c.kind.in_(kinds)]
    if flt.since is not None:
        where.append(_T.c.effective_at >= as_utc(flt.since))
    if flt.until is not None:
        where.append(_T.c.effective_at < as_utc(flt.until))
    if flt.member:
        try:
            where.append(_T.c.member_id == accounts.member(flt.member, team_id).id)
        except NotFound:
            raise InvalidInput(f"member: {flt.member!r} is not a member of this team") from None
    if flt.feature is not None:
        where.append(_T.c.feature == Feature(flt.feature).value)
    if flt.category is not None:
        where.append(_T.c.category == Category(flt.category).value)
    if flt.cursor:
        when, tid = _decode_cursor(flt.cursor)
        where.append(or_(_T.c.effective_at < when, and_(_T.c.effective_at == when, _T.c.id < tid)))
    stmt = (
        select(_T, _MEMBER.c.email)
        .outerjoin(_MEMBER, _MEMBER.c.id == _T.c.member_id)
        .where(*where)
        .order_by(_T.c.effective_at.desc(), _T.c.id.desc())
        .limit(flt.limit + 1)
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > flt.limit
    rows = rows[: flt.limit]
    entries = [
        UsageEntry(
            id=r.id,
            date=as_utc(r.effective_at),
            feature=r.feature,
            category=r.category,
            action=r.action,
            description=r.description,
            credits=-r.amount if r.kind == TransferKind.REFUND.value else r.amount,
            data_requested=r.data_requested,
            user=r.email,
            refund=r.kind == TransferKind.REFUND.value,
        )
        for r in rows
    ]
    cursor = _encode_cursor(rows[-1].effective_at, rows[-1].id) if more and rows else None
    return UsagePage(entries, cursor)


