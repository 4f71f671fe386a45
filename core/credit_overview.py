"""What a member sees of the team's credits: balance, cycle, this cycle's spend, accesses and refunds.

A read model for the front ends (Slack `/tributary credits`, the App Home). Spend is what the usage
log counts as spend (charges and posted holds) dated inside the cycle; refunds are listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, func, select

from core.accounts import Accounts, CycleInfo, TeamInfo
from core.ledger import Balance
from storage.db import read_transaction
from storage.models import Company, DataRequest, LedgerTransfer, Member, Person, ScheduledRefund
from storage.models.enums import Category, DataKind, DataRequestStatus, TransferKind
from storage.timeutil import as_utc, utcnow

_T = LedgerTransfer.__table__
_DR = DataRequest.__table__
_PERSON = Person.__table__
_COMPANY = Company.__table__
_SR = ScheduledRefund.__table__
_MEMBER = Member.__table__
_SPEND_KINDS = (TransferKind.SPEND.value, TransferKind.POST.value)


@dataclass(frozen=True)
class CategorySpend:
    category: Category | None  # None: spend recorded without a category
    credits: int


@dataclass(frozen=True)
class MemberSpend:
    member_id: int | None
    email: str | None
    credits: int
    by_category: tuple[CategorySpend, ...]


@dataclass(frozen=True)
class RecentAccess:
    request_id: int
    person_id: int
    person_name: str
    company: str | None
    kind: DataKind
    status: DataRequestStatus
    credits_charged: int
    member_email: str | None
    settled_at: datetime | None


@dataclass(frozen=True)
class RefundView:
    id: int
    amount_credits: int
    description: str | None
    member_id: int | None
    earned_at: datetime
    granted_at: datetime | None  # None: pending, granted when the next cycle starts

    @property
    def pending(self) -> bool:
        return self.granted_at is None


@dataclass(frozen=True)
class CreditOverview:
    team: TeamInfo
    balance: Balance
    cycle: CycleInfo
    spent_credits: int  # the whole team, this cycle
    by_category: tuple[CategorySpend, ...]
    member_id: int | None
    member_spent_credits: int  # the member asking, this cycle (0 for a non-member)
    member_by_category: tuple[CategorySpend, ...]


class CreditOverviews:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    def overview(
        self, team_ref: int | str, member_id: int | None = None, now: datetime | None = None
    ) -> CreditOverview:
        now = as_utc(now or utcnow())
        team = self.accounts.team(team_ref)
        cycle = self.accounts.current_cycle(team.id)
        balance = self.accounts.ledger.balance(team.id, now)
        members = self.spend_by_member(team.id, since=cycle.starts_at, until=now)
        mine = next((m for m in members if member_id is not None and m.member_id == member_id), None)
        return CreditOverview(
            team=team,
            balance=balance,
            cycle=cycle,
            spent_credits=sum(m.credits for m in members),
            by_category=_merge([c for m in members for c in m.by_category]),
            member_id=member_id,
            member_spent_credits=mine.credits if mine else 0,
            member_by_category=mine.by_category if mine else (),
        )

    def spend_by_member(self, team_id: int, *, since: datetime, until: datetime) -> list[MemberSpend]:
        """Members who spent in [since, until), most credits first, each with spend by category."""
        with read_transaction(self.engine) as conn:
            rows = _spend_rows(conn, team_id, as_utc(since), as_utc(until))
        by_member: dict[int | None, list] = {}
        for row in rows:
            by_member.setdefault(row.member_id, []).append(row)
        result = [
            MemberSpend(
                member_id=member_id,
                email=member_rows[0].email,
                credits=sum(int(r.credits) for r in member_rows),
                by_category=_merge(
                    [CategorySpend(Category(r.category) if r.category else None, int(r.credits)) for r in member_rows]
                ),
            )
            for member_id, member_rows in by_member.items()
        ]
        return sorted(result, key=lambda m: (-m.credits, m.email or ""))

    def recent_accesses(self, team_id: int, *, member_id: int | None = None, limit: int = 10) -> list[RecentAccess]:
        conditions = [
            _DR.c.team_id == team_id,
            _DR.c.status.in_([DataRequestStatus.CHARGED.value, DataRequestStatus.FREE.value]),
        ]
        if member_id is not None:
            conditions.append(_DR.c.member_id == member_id)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_DR, _PERSON.c.full_name, _COMPANY.c.name.label("company"), _MEMBER.c.email)
                .join(_PERSON, _PERSON.c.id == _DR.c.person_id)
                .outerjoin(_COMPANY, _COMPANY.c.id == _PERSON.c.company_id)
                .outerjoin(_MEMBER, _MEMBER.c.id == _DR.c.member_id)
                .where(and_(*conditions))
                .order_by(_DR.c.settled_at.desc(), _DR.c.id.desc())
                .limit(limit)
            ).all()
        return [
            RecentAccess(
                request_id=r.id,
                person_id=r.person_id,
                person_name=r.full_name,
                company=r.company,
                kind=DataKind(r.kind),
                status=DataRequestStatus(r.status),
                credits_charged=r.credits_charged,
                member_email=r.email,
                settled_at=as_utc(r.settled_at) if r.settled_at else None,
            )
            for r in rows
        ]

    def refunds(self, team_id: int, *, member_id: int | None = None, limit: int = 10) -> list[RefundView]:
        """Pending refunds first, then granted ones, newest first within each."""
        conditions = [_SR.c.team_id == team_id]
        if member_id is not None:
            conditions.append(_SR.c.member_id == member_id)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_SR)
                .where(and_(*conditions))
                .order_by(_SR.c.granted_at.is_not(None), _SR.c.earned_at.desc(), _SR.c.id.desc())
                .limit(limit)
            ).all()
        return [
            RefundView(
                id=r.id,
                amount_credits=r.amount,
                description=r.description,
                member_id=r.member_id,
                earned_at=as_utc(r.earned_at),
                granted_at=as_utc(r.granted_at) if r.granted_at else None,
            )
            for r in rows
        ]


def _spend_rows(conn: Connection, team_id: int, since: datetime, until: datetime):
    return conn.execute(
        select(
            _T.c.member_id,
            _MEMBER.c.email,
            _T.c.category,
            func.sum(_T.c.amount).label("credits"),
        )
        .outerjoin(_MEMBER, _MEMBER.c.id == _T.c.member_id)
        .where(
            _T.c.team_id == team_id,
            _T.c.kind.in_(_SPEND_KINDS),
            _T.c.effective_at >= since,
            _T.c.effective_at < until,
        )
        .group_by(_T.c.member_id, _MEMBER.c.email, _T.c.category)
    ).all()


def _merge(parts: list[CategorySpend]) -> tuple[CategorySpend, ...]:
    """Sum by category, in Category order (uncategorised last), leaving out zeros."""
    totals: dict[Category | None, int] = {}
    for part in parts:
        totals[part.category] = totals.get(part.category, 0) + part.credits
    order = [*Category, None]
    return tuple(CategorySpend(c, totals[c]) for c in order if totals.get(c))


__all__ = ["CategorySpend", "CreditOverview", "CreditOverviews", "MemberSpend", "RecentAccess", "RefundView"]
