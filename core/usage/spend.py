"""Spend: one definition, one set of types, one query.

Spend is what the usage log shows as spend: the ledger's `spend` and `post` transfers
(core.ledger.SPEND_KINDS), dated by `effective_at`, in a half-open range [start, end). The credit
overview (this cycle, by member and category) and the usage digests (a period, by category, feature,
member and day) both read it through `spend_rows` and speak of it with the types below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, and_, case, func, literal, select

from core.ledger import SPEND_KINDS
from storage.models import LedgerTransfer, Member
from storage.models.enums import Category, Feature

_T = LedgerTransfer.__table__
_M = Member.__table__
_SPEND_KIND_VALUES = tuple(kind.value for kind in SPEND_KINDS)


@dataclass(frozen=True)
class CategorySpend:
    category: Category | None  # None: spend recorded without a category
    credits: int

    @property
    def label(self) -> str:
        return self.category.value if self.category else "other"


@dataclass(frozen=True)
class FeatureSpend:
    feature: Feature | None  # None: spend recorded without a feature
    credits: int

    @property
    def label(self) -> str:
        return self.feature.value if self.feature else "other"


@dataclass(frozen=True)
class MemberSpend:
    member_id: int | None  # None: spend not attributed to a member
    email: str | None
    credits: int
    by_category: tuple[CategorySpend, ...] = ()  # filled by `spend_by_member`; the digest leaves it empty

    @property
    def label(self) -> str:
        return self.email or "(no member)"


@dataclass(frozen=True)
class DaySpend:
    day: date  # a UTC day
    by_category: tuple[CategorySpend, ...]

    @property
    def spent_credits(self) -> int:
        return sum(c.credits for c in self.by_category)


@dataclass(frozen=True)
class SpendRow:
    """Spend summed over one (category, feature, member, day) in a range."""

    category: str | None
    feature: str | None
    member_id: int | None
    email: str | None
    day_index: int  # 0 for the range's first day (or for the whole range without day boundaries)
    credits: int


def effective_in(start: datetime, end: datetime):
    """Transfers dated (by `effective_at`) in [start, end)."""
    return and_(_T.c.effective_at >= start, _T.c.effective_at < end)


def spend_rows(
    conn: Connection, team_id: int, start: datetime, end: datetime, *, day_boundaries: Sequence[datetime] = ()
) -> list[SpendRow]:
    """The team's spend in [start, end) by category, feature, member and day; `day_boundaries` are the
    starts of the second, third ... day (none: one bucket for the whole range)."""
    # The day bucket as a CASE over the day boundaries: portable, unlike date functions. It is
    # computed in a subquery so that the outer GROUP BY names a plain column (PostgreSQL will not
    # match a SELECT expression to a GROUP BY expression carrying its own bound parameters).
    boundaries = list(day_boundaries)
    day_index = (
        case(*[(_T.c.effective_at < b, i) for i, b in enumerate(boundaries)], else_=len(boundaries))
        if boundaries
        else literal(0)
    )
    spends = (
        select(_T.c.category, _T.c.feature, _T.c.member_id, _T.c.amount, day_index.label("day_index"))
        .where(_T.c.team_id == team_id, _T.c.kind.in_(_SPEND_KIND_VALUES), effective_in(start, end))
        .subquery()
    )
    result = conn.execute(
        select(
            spends.c.category,
            spends.c.feature,
            spends.c.member_id,
            _M.c.email,
            spends.c.day_index,
            func.sum(spends.c.amount).label("credits"),
        )
        .outerjoin(_M, _M.c.id == spends.c.member_id)
        .group_by(spends.c.category, spends.c.feature, spends.c.member_id, _M.c.email, spends.c.day_index)
    )
    return [SpendRow(r.category, r.feature, r.member_id, r.email, int(r.day_index), int(r.credits)) for r in result]


def spent_between(conn: Connection, team_id: int, start: datetime, end: datetime) -> int:
    """The team's total spend in [start, end)."""
    total = conn.execute(
        select(func.coalesce(func.sum(_T.c.amount), 0)).where(
            _T.c.team_id == team_id, _T.c.kind.in_(_SPEND_KIND_VALUES), effective_in(start, end)
        )
    ).scalar_one()
    return int(total)


def spend_by_member(rows: Sequence[SpendRow]) -> list[MemberSpend]:
    """Members who spent, most credits first, each with spend by category."""
    by_member: dict[int | None, list[SpendRow]] = {}
    for row in rows:
        by_member.setdefault(row.member_id, []).append(row)
    result = [
        MemberSpend(
            member_id=member_id,
            email=member_rows[0].email,
            credits=sum(r.credits for r in member_rows),
            by_category=merge_categories(
                [CategorySpend(Category(r.category) if r.category else None, r.credits) for r in member_rows]
            ),
        )
        for member_id, member_rows in by_member.items()
    ]
    return sorted(result, key=lambda m: (-m.credits, m.email or ""))


def merge_categories(parts: Sequence[CategorySpend]) -> tuple[CategorySpend, ...]:
    """Sum by category, in Category order (uncategorised last), leaving out zeros."""
    totals: dict[Category | None, int] = {}
    for part in parts:
        totals[part.category] = totals.get(part.category, 0) + part.credits
    order = [*Category, None]
    return tuple(CategorySpend(c, totals[c]) for c in order if totals.get(c))


__all__ = [
    "CategorySpend",
    "DaySpend",
    "FeatureSpend",
    "MemberSpend",
    "SpendRow",
    "effective_in",
    "merge_categories",
    "spend_by_member",
    "spend_rows",
    "spent_between",
]
