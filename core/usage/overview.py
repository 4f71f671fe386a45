"""What a member sees of the team's credits: balance, cycle, this cycle's spend, accesses and refunds.

A read model for the front ends (Slack `/tributary credits`, the App Home). Spend is as defined in
core.usage.spend, dated inside the cycle; refunds are listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select

from core.accounts import Accounts, CycleInfo, TeamInfo
from core.ledger import Balance
from core.usage.spend import CategorySpend, MemberSpend, merge_categories, spend_by_member, spend_rows
from storage.db import read_transaction
from storage.models import Company, DataRequest, Member, Person, ScheduledRefund
from storage.models.enums import DataKind, DataRequestStatus
from storage.timeutil import as_utc, utcnow

_DR = DataRequest.__table__
_PERSON = Person.__table__
_COMPANY = Company.__table__
_SR = ScheduledRefund.__table__
_MEMBER = Member.__table__


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
            by_category=merge_categories([c for m in members for c in m.by_category]),
            member_id=member_id,
            member_spent_credits=mine.credits if mine else 0,
            member_by_category=mine.by_category if mine else (),
        )

    def spend_by_member(self, team_id: int, *, since: datetime, until: datetime) -> list[MemberSpend]:
        """Members who spent in [since, until), most credits first, each with spend by category."""
        with read_transaction(self.engine) as conn:
            rows = spend_rows(conn, team_id, as_utc(since), as_utc(until))
        return spend_by_member(rows)

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


__all__ = ["CreditOverview", "CreditOverviews", "RecentAccess", "RefundView"]
