"""The usage digest of one team for one period, read from the ledger's transfer log.

Spend is as defined in core.usage.spend (`spend` and `post` transfers, dated by `effective_at`).
Every breakdown (category, feature, member, day) sums to the period's total: named entries are
always present (zero when idle), and spend recorded without a category, feature or member shows
as one extra entry with `None` only when there is some.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, or_, select

from core.accounts import Accounts
from core.job_changes import JobChanges, JobChangeSummary
from core.ledger import Balance, Ledger
from core.usage.forecast import RunOutForecast, forecast_run_out, pace_window
from core.usage.periods import Period, period_containing
from core.usage.spend import (
    CategorySpend,
    DaySpend,
    FeatureSpend,
    MemberSpend,
    SpendRow,
    effective_in,
    spend_rows,
    spent_between,
)
from storage.db import read_transaction
from storage.models import LedgerTransfer, ScheduledRefund
from storage.models.digests import DigestPeriod
from storage.models.enums import Category, Feature, TransferKind
from storage.timeutil import as_utc, utcnow

_T = LedgerTransfer.__table__
_SR = ScheduledRefund.__table__


@dataclass(frozen=True)
class RefundSummary:
    granted_credits: int  # REFUND transfers effective in the period
    granted_count: int
    pending_credits: int  # scheduled refunds not yet granted as of the digest's generation
    pending_count: int


@dataclass(frozen=True)
class UsageDigest:
    team_id: int
    team_name: str
    period: Period
    generated_at: datetime
    spent_credits: int
    by_category: tuple[CategorySpend, ...]  # the six categories in Category order (+ None if any)
    by_feature: tuple[FeatureSpend, ...]  # the five features in Feature order (+ None if any)
    by_member: tuple[MemberSpend, ...]  # members who spent, most credits first
    daily: tuple[DaySpend, ...]  # one per day of the period, categories as in by_category
    refunds: RefundSummary
    balance: Balance  # Ledger.balance at generated_at
    forecast: RunOutForecast  # from the balance and the pace of the 7 days before generated_at
    job_changes: JobChangeSummary = JobChangeSummary(0, ())  # the team's contacts who moved in the period


class UsageDigests:
    def __init__(
        self, engine: Engine, ledger: Ledger, accounts: Accounts, *, job_changes: JobChanges | None = None
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.accounts = accounts
        self.job_changes = job_changes or JobChanges(engine, accounts)

    def build(
        self,
        team_ref: int | str,
        kind: DigestPeriod | str,
        *,
        at: datetime | None = None,
        now: datetime | None = None,
    ) -> UsageDigest:
        """The digest of the period of `kind` that contains `at` (default: now), generated at `now`."""
        now = as_utc(now or utcnow())
        return self.build_for(team_ref, period_containing(kind, as_utc(at) if at else now), now=now)

    def build_for(self, team_ref: int | str, period: Period, *, now: datetime) -> UsageDigest:
        team = self.accounts.team(team_ref)
        now = as_utc(now)
        window_start, window_end = pace_window(now)
        with read_transaction(self.engine) as conn:
            rows = spend_rows(conn, team.id, period.start, period.end, day_boundaries=_day_boundaries(period))
            refunds = _refunds(conn, team.id, period, now)
            window_spent = spent_between(conn, team.id, window_start, window_end)
        balance = self.ledger.balance(team.id, now)
        by_category, by_feature, by_member, daily = _fold(rows, period)
        return UsageDigest(
            team_id=team.id,
            team_name=team.name,
            period=period,
            generated_at=now,
            spent_credits=sum(r.credits for r in rows),
            by_category=by_category,
            by_feature=by_feature,
            by_member=by_member,
            daily=daily,
            refunds=refunds,
            balance=balance,
            forecast=forecast_run_out(balance.available_credits, window_spent, now),
            job_changes=self.job_changes.summary(team.id, period.start, min(period.end, now)),
        )


def _day_boundaries(period: Period) -> list[datetime]:
    """The starts of the period's second, third ... day (the day buckets of `spend_rows`)."""
    return [period.start + timedelta(days=i + 1) for i in range(len(period.days) - 1)]


def _refunds(conn: Connection, team_id: int, period: Period, now: datetime) -> RefundSummary:
    granted = conn.execute(
        select(func.coalesce(func.sum(_T.c.amount), 0), func.count()).where(
            _T.c.team_id == team_id, _T.c.kind == TransferKind.REFUND.value, effective_in(period.start, period.end)
        )
    ).one()
    # Pending as of `now`: earned by then and not granted by then (a later grant does not count yet).
    pending = conn.execute(
        select(func.coalesce(func.sum(_SR.c.amount), 0), func.count()).where(
            _SR.c.team_id == team_id,
            _SR.c.earned_at <= now,
            or_(_SR.c.granted_transfer_id.is_(None), _SR.c.granted_at > now),
        )
    ).one()
    return RefundSummary(int(granted[0]), int(granted[1]), int(pending[0]), int(pending[1]))


def _fold(
    rows: list[SpendRow], period: Period
) -> tuple[tuple[CategorySpend, ...], tuple[FeatureSpend, ...], tuple[MemberSpend, ...], tuple[DaySpend, ...]]:
    by_category: dict[str | None, int] = {c.value: 0 for c in Category}
    by_feature: dict[str | None, int] = {f.value: 0 for f in Feature}
    by_member: dict[tuple[int | None, str | None], int] = defaultdict(int)
    by_day: dict[tuple[int, str | None], int] = defaultdict(int)
    for r in rows:
        by_category[r.category] = by_category.get(r.category, 0) + r.credits
        by_feature[r.feature] = by_feature.get(r.feature, 0) + r.credits
        by_member[(r.member_id, r.email)] += r.credits
        by_day[(r.day_index, r.category)] += r.credits
    categories = [c.value for c in Category] + ([None] if by_category.get(None) else [])
    features = [f.value for f in Feature] + ([None] if by_feature.get(None) else [])

    def category(value: str | None, credits: int) -> CategorySpend:
        return CategorySpend(Category(value) if value else None, credits)

    members = sorted(by_member.items(), key=lambda item: (-item[1], item[0][1] or "~", item[0][0] or 0))
    return (
        tuple(category(c, by_category[c]) for c in categories),
        tuple(FeatureSpend(Feature(f) if f else None, by_feature[f]) for f in features),
        tuple(MemberSpend(member_id, email, credits) for (member_id, email), credits in members),
        tuple(
            DaySpend(day, tuple(category(c, by_day.get((i, c), 0)) for c in categories))
            for i, day in enumerate(period.days)
        ),
    )


__all__ = [
    "RefundSummary",
    "UsageDigest",
    "UsageDigests",
]
