"""The ledger's read side: balances (now and at a past instant), holds, lots, totals, transfers and
the usage log; and the account lookups both sides share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select

from core.errors import NotFound
from core.ledger.sql import (
    _A,
    _ACCOUNT_IDS,
    _H,
    _L,
    _LIVE_LOTS,
    _LOCK_WALLET,
    _POSTED_KINDS,
    _READ_WALLET,
    _T,
)
from core.ledger.types import (
    SPEND_KINDS,
    Balance,
    Hold,
    LotView,
    Transfer,
    UsageMeta,
    UsageRow,
    _AccountRef,
    _check_time,
)
from storage.db import read_transaction
from storage.models import Member
from storage.models.enums import AccountKind, Category, Feature, HoldStatus, LotSource, TransferKind
from storage.timeutil import as_utc, utcnow


class LedgerReads:
    """What `Ledger` reads; `Ledger` (core.ledger.writes) adds the writes on top."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # A team's account ids never change once opened.
        self._account_ids: dict[int, dict[AccountKind, int]] = {}

    def _ids(self, conn: Connection, team_id: int) -> dict[AccountKind, int]:
        ids = self._account_ids.get(team_id)
        if ids is None:
            ids = {AccountKind(row.kind): row.id for row in conn.execute(_ACCOUNT_IDS, {"team_id": team_id})}
            if len(ids) != len(AccountKind):
                raise NotFound(f"unknown team id {team_id}")
            self._account_ids[team_id] = ids
        return ids

    def _accounts(self, conn: Connection, team_id: int, *, lock: bool) -> dict[AccountKind, Any]:
        """The team's accounts; the wallet as a fresh row (locked when `lock`), the others by id.

        Locking the wallet alone, first, is the one lock order every writer follows."""
        ids = self._ids(conn, team_id)
        wallet = conn.execute(_LOCK_WALLET if lock else _READ_WALLET, {"wallet_id": ids[AccountKind.WALLET]}).one()
        accounts: dict[AccountKind, Any] = {kind: _AccountRef(account_id) for kind, account_id in ids.items()}
        accounts[AccountKind.WALLET] = wallet
        return accounts

    def _live_lots(self, conn: Connection, team_id: int, now: datetime) -> list[tuple[int, int]]:
        """(lot id, free credits) of lots usable at `now`, soonest-expiring first."""
        rows = conn.execute(_LIVE_LOTS, {"team_id": team_id, "now": now}).all()
        return [(row.id, int(row.free)) for row in rows if row.free > 0]

    # ---- reads ---------------------------------------------------------------------------

    def balance(self, team_id: int, now: datetime | None = None) -> Balance:
        now = _check_time(now, "now") or utcnow()
        with read_transaction(self.engine) as conn:
            self._accounts(conn, team_id, lock=False)
            available = sum(free for _, free in self._live_lots(conn, team_id, now))
            held = conn.execute(
                select(func.coalesce(func.sum(_H.c.amount - _H.c.posted_amount), 0)).where(
                    _H.c.team_id == team_id, _H.c.status == HoldStatus.PENDING.value, _H.c.expires_at > now
                )
            ).scalar_one()
        return Balance(team_id=team_id, available_credits=available, held_credits=int(held), as_of=now)

    def balance_at(self, team_id: int, at: datetime) -> Balance:
        """The wallet as it stood at a past instant, from the transfer log alone."""
        at = as_utc(at)
        with read_transaction(self.engine) as conn:
            wallet = self._accounts(conn, team_id, lock=False)[AccountKind.WALLET]
            signed_posted = case((_T.c.credit_account_id == wallet.id, _T.c.amount), else_=-_T.c.amount)
            posted = conn.execute(
                select(func.coalesce(func.sum(signed_posted), 0)).where(
                    _T.c.team_id == team_id,
                    _T.c.kind.in_([k.value for k in _POSTED_KINDS]),
                    _T.c.effective_at <= at,
                )
            ).scalar_one()
            signed_pending = case((_T.c.kind == TransferKind.HOLD.value, _T.c.amount), else_=-_T.c.amount)
            held = conn.execute(
                select(func.coalesce(func.sum(signed_pending), 0)).where(
                    _T.c.team_id == team_id,
                    _T.c.kind.in_(
                        [
                            TransferKind.HOLD.value,
                            TransferKind.POST.value,
                            TransferKind.VOID.value,
                            TransferKind.HOLD_EXPIRE.value,
                        ]
                    ),
                    _T.c.effective_at <= at,
                )
            ).scalar_one()
        return Balance(team_id=team_id, available_credits=int(posted) - int(held), held_credits=int(held), as_of=at)

    def hold_view(self, hold_id: int) -> Hold:
        with read_transaction(self.engine) as conn:
            return self._hold_view(conn, hold_id)

    def hold_in(self, conn: Connection, hold_id: int) -> Hold:
        """A hold's state read inside the caller's transaction."""
        return self._hold_view(conn, hold_id)

    def lots(self, team_id: int) -> list[LotView]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_L).where(_L.c.team_id == team_id).order_by(_L.c.id)).all()
        return [
            LotView(
                r.id, LotSource(r.source), r.amount, r.spent, r.expired, as_utc(r.expires_at) if r.expires_at else None
            )
            for r in rows
        ]

    def account_totals(self, team_id: int | None = None) -> dict[tuple[int, AccountKind], int]:
        """(team, kind) -> credits_posted - debits_posted. Their sum is zero by construction."""
        with read_transaction(self.engine) as conn:
            stmt = select(_A)
            if team_id is not None:
                stmt = stmt.where(_A.c.team_id == team_id)
            return {
                (row.team_id, AccountKind(row.kind)): row.credits_posted - row.debits_posted
                for row in conn.execute(stmt)
            }

    def pending_totals(self, team_id: int) -> dict[AccountKind, tuple[int, int]]:
        with read_transaction(self.engine) as conn:
            return {
                AccountKind(row.kind): (row.debits_pending, row.credits_pending)
                for row in conn.execute(select(_A).where(_A.c.team_id == team_id))
            }

    def transfers(self, team_id: int) -> list[Transfer]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_T).where(_T.c.team_id == team_id).order_by(_T.c.id)).all()
        return [_transfer_from_row(r) for r in rows]

    def transfer(self, transfer_id: int) -> Transfer:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_T).where(_T.c.id == transfer_id)).one_or_none()
        if row is None:
            raise NotFound(f"unknown transfer {transfer_id}")
        return _transfer_from_row(row)

    def usage_log(
        self,
        team_id: int,
        *,
        include_refunds: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
        member_id: int | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        """Date, feature, action, description, credits, data requested, user; newest first."""
        kinds = [k.value for k in SPEND_KINDS] + ([TransferKind.REFUND.value] if include_refunds else [])
        conditions = [_T.c.team_id == team_id, _T.c.kind.in_(kinds)]
        if since is not None:
            conditions.append(_T.c.effective_at >= as_utc(since))
        if until is not None:
            conditions.append(_T.c.effective_at < as_utc(until))
        if member_id is not None:
            conditions.append(_T.c.member_id == member_id)
        member = Member.__table__
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_T, member.c.email)
                .outerjoin(member, member.c.id == _T.c.member_id)
                .where(and_(*conditions))
                .order_by(_T.c.effective_at.desc(), _T.c.id.desc())
                .limit(limit)
            ).all()
        return [
            UsageRow(
                date=as_utc(r.effective_at),
                feature=r.feature,
                action=r.action,
                description=r.description,
                credits=-r.amount if r.kind == TransferKind.REFUND.value else r.amount,
                data_requested=r.data_requested,
                user=r.email,
                category=r.category,
                kind=TransferKind(r.kind),
            )
            for r in rows
        ]

    @staticmethod
    def _hold_view(conn: Connection, hold_id: int) -> Hold:
        row = conn.execute(select(_H).where(_H.c.id == hold_id)).one_or_none()
        if row is None:
            raise NotFound(f"unknown hold {hold_id}")
        return Hold(row.id, row.team_id, row.amount, row.posted_amount, HoldStatus(row.status), as_utc(row.expires_at))


def _transfer_from_row(row: Any) -> Transfer:
    return Transfer(
        id=row.id,
        team_id=row.team_id,
        key=row.idempotency_key,
        kind=TransferKind(row.kind),
        amount_credits=row.amount,
        hold_id=row.hold_id,
        created_at=as_utc(row.created_at),
        effective_at=as_utc(row.effective_at),
        meta=UsageMeta(
            category=Category(row.category) if row.category else None,
            feature=Feature(row.feature) if row.feature else None,
            member_id=row.member_id,
            action=row.action,
            description=row.description,
            data_requested=row.data_requested,
        ),
    )
