"""What a team can see of its credits beyond spending: grants (with their notes) in the usage log,
lots with their expiry dates, and whether a grant was new or a replay of its idempotency key.

Reads only: the ledger stays the one writer (`Ledger.grant`), and this module reads its tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select

from core.bounces.refunds import Refunds
from core.ledger import Ledger, Transfer, UsageRow
from storage.db import read_transaction
from storage.models import CreditLot, LedgerTransfer
from storage.models.enums import LotSource, TransferKind
from storage.timeutil import as_utc, utcnow

_T = LedgerTransfer.__table__
_L = CreditLot.__table__


@dataclass(frozen=True)
class LotLine:
    """One lot of credits: where it came from, what is left of it, when it expires (None: never)."""

    source: LotSource
    granted_credits: int
    remaining_credits: int
    expires_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class GrantOutcome:
    transfer: Transfer
    replayed: bool  # True: the key had granted before; nothing changed this time


class CreditHistory:
    def __init__(self, engine: Engine, ledger: Ledger, refunds: Refunds) -> None:
        self.engine = engine
        self.ledger = ledger
        self.refunds = refunds

    def grant(
        self, team_id: int, amount: int, *, key: str, expires_at: datetime | None, note: str | None
    ) -> GrantOutcome:
        """`Ledger.grant`, telling a first grant from a replay of its key: a new transfer is stamped
        with this call's `now`, a replayed one carries the original (earlier) time."""
        now = utcnow()
        transfer = self.ledger.grant(team_id, amount, key=key, expires_at=expires_at, description=note, now=now)
        return GrantOutcome(transfer, replayed=as_utc(transfer.created_at) != now)

    def live_lots(self, team_id: int, now: datetime | None = None) -> list[LotLine]:
        """Lots with credits left that have not expired, soonest expiry first (never-expiring last)."""
        now = as_utc(now or utcnow())
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_L, _T.c.description)
                .join(_T, _T.c.id == _L.c.grant_transfer_id)
                .where(_L.c.team_id == team_id, _L.c.amount > _L.c.spent + _L.c.expired)
                .order_by(_L.c.id)
            ).all()
        lots = [
            LotLine(
                source=LotSource(r.source),
                granted_credits=r.amount,
                remaining_credits=r.amount - r.spent - r.expired,
                expires_at=as_utc(r.expires_at) if r.expires_at else None,
                note=r.description,
            )
            for r in rows
            if r.expires_at is None or as_utc(r.expires_at) > now
        ]
        return sorted(lots, key=lambda lot: (lot.expires_at is None, lot.expires_at or now))

    def usage_log(
        self,
        team_id: int,
        *,
        include_refunds: bool = True,
        include_grants: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
        member_id: int | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        """The usage log (spend, refunds and refund decisions) plus grants: plan allotments, top-ups
        and admin grants, their note as the description. Grants add credits: negative amounts, as
        refunds. Grants belong to no member, so a log filtered by member has none."""
        rows = self.refunds.usage_log(
            team_id, include_refunds=include_refunds, since=since, until=until, member_id=member_id, limit=limit
        )
        if not include_grants or member_id is not None:
            return rows
        rows += self._grants(team_id, since=since, until=until, limit=limit)
        rows.sort(key=lambda r: r.date, reverse=True)
        return rows[:limit]

    def _grants(self, team_id: int, *, since: datetime | None, until: datetime | None, limit: int) -> list[UsageRow]:
        conditions = [_T.c.team_id == team_id, _T.c.kind == TransferKind.GRANT.value]
        if since is not None:
            conditions.append(_T.c.effective_at >= as_utc(since))
        if until is not None:
            conditions.append(_T.c.effective_at < as_utc(until))
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_T, _L.c.source, _L.c.expires_at)
                .outerjoin(_L, _L.c.grant_transfer_id == _T.c.id)
                .where(and_(*conditions))
                .order_by(_T.c.effective_at.desc(), _T.c.id.desc())
                .limit(limit)
            ).all()
        return [
            UsageRow(
                date=as_utc(r.effective_at),
                feature=None,
                action="allotment" if r.source == LotSource.ALLOTMENT.value else "grant",
                description=_grant_description(r.description, r.expires_at),
                credits=-r.amount,
                data_requested=None,
                user=None,
                category=None,
                kind=TransferKind.GRANT,
            )
            for r in rows
        ]


def _grant_description(note: str | None, expires_at: datetime | None) -> str:
    expiry = f"expires {as_utc(expires_at):%Y-%m-%d}" if expires_at else "never expires"
    return f"{note} ({expiry})" if note else expiry
