"""The ledger's write side: `Ledger`, every operation that moves credits, under one lock order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from core.errors import InvalidInput, NotFound, check
from core.ledger.reads import LedgerReads, _transfer_from_row
from core.ledger.sql import (
    _A,
    _H,
    _HA,
    _INSERT_TRANSFER,
    _L,
    _MEMBER_TEAM,
    _MOVE,
    _PG_CHARGE,
    _PG_CHARGE_MANY,
    _PG_LOCK_WALLET,
    _R,
    _READ_WALLET,
    _REPLAY,
    _SPEND_LOT,
    _SPEND_SQL,
    _SQLITE_CHARGE_INSERT,
    _SQLITE_CHARGE_SPEND_LOT,
    _SR,
    _T,
    _driver_time,
)
from core.ledger.types import (
    MAX_HOLD_TIMEOUT_S,
    SYSTEM_KEY_PREFIX,
    Charge,
    Hold,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientCredits,
    Transfer,
    UsageMeta,
    _body_hash,
    _check_amount,
    _check_key,
    _check_time,
    _Rejected,
)
from storage.db import run_write
from storage.models.enums import AccountKind, Category, HoldStatus, LotSource, TransferKind
from storage.timeutil import as_utc, utcnow


class Ledger(LedgerReads):
    """The credit ledger (see core.ledger): the write operations, with the reads of `LedgerReads`."""

    # ---- accounts ------------------------------------------------------------------------

    @staticmethod
    def open_accounts(conn: Connection, team_id: int) -> None:
        """Create a team's five accounts. Called by core.accounts inside team creation."""
        conn.execute(insert(_A), [{"team_id": team_id, "kind": kind.value} for kind in AccountKind])

    def _check_member(self, conn: Connection, team_id: int, meta: UsageMeta | None) -> None:
        if meta is None or meta.member_id is None:
            return
        member_team = conn.execute(_MEMBER_TEAM, {"member_id": meta.member_id}).scalar()
        if member_team is None:
            raise NotFound(f"unknown member id {meta.member_id}")
        if member_team != team_id:
            raise InvalidInput(f"member {meta.member_id} does not belong to team {team_id}")

    @staticmethod
    def _available(wallet: Any) -> int:
        """Spendable credits, read off the locked wallet row: exact once the team is swept."""
        return wallet.credits_posted - wallet.debits_posted - wallet.debits_pending

    # ---- idempotency ---------------------------------------------------------------------

    def _replay(self, conn: Connection, team_id: int, key: str, body_hash: str) -> Any | None:
        """The original outcome of `key`, or None if the key is new."""
        found = conn.execute(_REPLAY, {"team_id": team_id, "key": key}).first()
        if found is None:
            return None
        if found.body_hash != body_hash:
            raise IdempotencyConflict(key)
        if found.source == "transfer":
            return _transfer_from_row(conn.execute(select(_T).where(_T.c.id == found.id)).one())
        rejection = conn.execute(select(_R).where(_R.c.id == found.id)).one()
        return _Rejected(rejection.requested_credits, rejection.available_credits)

    def _reject(
        self, conn: Connection, team_id: int, key: str, body_hash: str, requested: int, available: int, now: datetime
    ) -> _Rejected:
        conn.execute(
            insert(_R).values(
                team_id=team_id,
                idempotency_key=key,
                body_hash=body_hash,
                reason="insufficient_credits",
                available_credits=available,
                requested_credits=requested,
                created_at=now,
            )
        )
        return _Rejected(requested, available)

    # ---- low-level movement --------------------------------------------------------------

    def _record(
        self,
        conn: Connection,
        *,
        team_id: int,
        key: str,
        body_hash: str,
        kind: TransferKind,
        debit: Any,
        credit: Any,
        amount: int,
        now: datetime,
        effective_at: datetime | None = None,
        hold_id: int | None = None,
        meta: UsageMeta | None = None,
        pending_delta: int = 0,
        posted_delta: int | None = None,
    ) -> Transfer:
        """Append one transfer and apply it to both accounts' totals.

        `posted_delta` (default: amount) moves posted totals; `pending_delta` moves pending totals
        (positive for a hold, negative for its release)."""
        check(amount > 0 and debit.id != credit.id, "a transfer moves a positive amount between two accounts")
        meta = meta or UsageMeta()
        effective_at = effective_at or now
        transfer_id = conn.execute(
            _INSERT_TRANSFER,
            {
                "team_id": team_id,
                "idempotency_key": key,
                "body_hash": body_hash,
                "kind": kind.value,
                "debit_account_id": debit.id,
                "credit_account_id": credit.id,
                "amount": amount,
                "hold_id": hold_id,
                **meta.columns(),
                "created_at": now,
                "effective_at": effective_at,
            },
        ).scalar_one()
        posted = amount if posted_delta is None else posted_delta
        # One statement for both sides of the entry.
        conn.execute(
            _MOVE,
            {"debit_id": debit.id, "credit_id": credit.id, "posted": posted, "pending": pending_delta},
        )
        return Transfer(
            id=transfer_id,
            team_id=team_id,
            key=key,
            kind=kind,
            amount_credits=amount,
            hold_id=hold_id,
            created_at=now,
            effective_at=effective_at,
            meta=meta,
        )

    @staticmethod
    def _take(lots: list[tuple[int, int]], amount: int) -> list[tuple[int, int]]:
        """Split `amount` over lots in order. The caller has checked that they cover it."""
        taken: list[tuple[int, int]] = []
        remaining = amount
        for lot_id, free in lots:
            if remaining == 0:
                break
            part = min(free, remaining)
            taken.append((lot_id, part))
            remaining -= part
        check(remaining == 0, "lots do not cover the amount")
        return taken

    @staticmethod
    def _spend_lots(conn: Connection, parts: Sequence[tuple[int, int]]) -> None:
        conn.execute(_SPEND_LOT, [{"lot_id": lot_id, "part": part} for lot_id, part in parts])

    @staticmethod
    def _lower_next_sweep(conn: Connection, wallet: Any, at: datetime | None) -> None:
        if at is None:
            return
        # Decided in SQL: the row in hand may predate a sweep in this same transaction.
        conn.execute(
            update(_A)
            .where(_A.c.id == wallet.id, or_(_A.c.next_sweep_at.is_(None), _A.c.next_sweep_at > at))
            .values(next_sweep_at=at)
        )

    # ---- sweeping: timed-out holds and expired lots ----------------------------------------

    def _lock_and_sweep(self, conn: Connection, team_id: int, now: datetime) -> dict[AccountKind, Any]:
        accounts = self._accounts(conn, team_id, lock=True)
        if self._sweep(conn, team_id, accounts, now):
            accounts[AccountKind.WALLET] = conn.execute(
                _READ_WALLET, {"wallet_id": accounts[AccountKind.WALLET].id}
            ).one()
        return accounts

    def _sweep(self, conn: Connection, team_id: int, accounts: dict[AccountKind, Any], now: datetime) -> bool:
        """Record what timed out or expired by `now`. Returns whether anything could have moved."""
        wallet = accounts[AccountKind.WALLET]
        if wallet.next_sweep_at is None or as_utc(wallet.next_sweep_at) > now:
            return False
        timed_out = conn.execute(
            select(_H).where(_H.c.team_id == team_id, _H.c.status == HoldStatus.PENDING.value, _H.c.expires_at <= now)
        ).all()
        for hold in timed_out:
            self._release(
                conn,
                team_id,
                accounts,
                hold,
                now,
                kind=TransferKind.HOLD_EXPIRE,
                key=f"{SYSTEM_KEY_PREFIX}hold-expire:{hold.id}",
                effective_at=as_utc(hold.expires_at),
                status=HoldStatus.EXPIRED,
            )
        self._expire_lots(conn, team_id, accounts, now)
        self._reset_next_sweep(conn, team_id, wallet.id, now)
        return True

    def _expire_lots(self, conn: Connection, team_id: int, accounts: dict[AccountKind, Any], now: datetime) -> None:
        reserved = (
            select(_HA.c.lot_id, func.sum(_HA.c.amount).label("reserved"))
            .join(_H, _H.c.id == _HA.c.hold_id)
            .where(_H.c.team_id == team_id, _H.c.status == HoldStatus.PENDING.value)
            .group_by(_HA.c.lot_id)
            .subquery()
        )
        rows = conn.execute(
            select(_L, func.coalesce(reserved.c.reserved, 0).label("reserved"))
            .outerjoin(reserved, reserved.c.lot_id == _L.c.id)
            .where(
                _L.c.team_id == team_id,
                _L.c.expires_at.is_not(None),
                _L.c.expires_at <= now,
                _L.c.amount - _L.c.spent - _L.c.expired > 0,
            )
            .order_by(_L.c.expires_at, _L.c.id)
        ).all()
        for lot in rows:
            # Credits a live hold reserved stay until the hold resolves (its release expires them).
            amount = lot.amount - lot.spent - lot.expired - int(lot.reserved)
            if amount <= 0:
                continue
            effective_at = max(as_utc(lot.expires_at), as_utc(lot.created_at))
            self._expire(conn, team_id, accounts, lot.id, lot.expired, amount, lot.source, now, effective_at)

    def _reset_next_sweep(self, conn: Connection, team_id: int, wallet_id: int, now: datetime) -> None:
        next_hold = conn.execute(
            select(func.min(_H.c.expires_at)).where(_H.c.team_id == team_id, _H.c.status == HoldStatus.PENDING.value)
        ).scalar()
        # Expired lots still reserved by a live hold are left to that hold's release.
        next_lot = conn.execute(
            select(func.min(_L.c.expires_at)).where(
                _L.c.team_id == team_id,
                _L.c.expires_at > now,
                _L.c.amount - _L.c.spent - _L.c.expired > 0,
            )
        ).scalar()
        candidates = [as_utc(v) for v in (next_hold, next_lot) if v is not None]
        next_at = min(candidates) if candidates else None
        conn.execute(update(_A).where(_A.c.id == wallet_id).values(next_sweep_at=next_at))

    def _release(
        self,
        conn: Connection,
        team_id: int,
        accounts: dict[AccountKind, Any],
        hold: Any,
        now: datetime,
        *,
        kind: TransferKind,
        key: str,
        status: HoldStatus,
        effective_at: datetime | None = None,
        body_hash: str | None = None,
    ) -> Transfer | None:
        """Release whatever a hold still reserves and close it."""
        remaining = hold.amount - hold.posted_amount
        transfer = None
        if remaining > 0:
            transfer = self._record(
                conn,
                team_id=team_id,
                key=key,
                body_hash=body_hash or _body_hash(kind.value, hold=hold.id),
                kind=kind,
                debit=accounts[AccountKind.WALLET],
                credit=accounts[AccountKind.SPEND],
                amount=remaining,
                now=now,
                effective_at=effective_at,
                hold_id=hold.id,
                pending_delta=-remaining,
                posted_delta=0,
            )
        # Credits going back to a lot that expired meanwhile expire now, dated with the release:
        # dated with the lot's expiry they would count as both held and expired in between.
        released_at = effective_at or now
        stale = conn.execute(
            select(_HA.c.amount, _L.c.id, _L.c.expired, _L.c.source)
            .join(_L, _L.c.id == _HA.c.lot_id)
            .where(_HA.c.hold_id == hold.id, _L.c.expires_at.is_not(None), _L.c.expires_at <= released_at)
        ).all()
        for part in stale:
            if part.amount > 0:
                self._expire(conn, team_id, accounts, part.id, part.expired, part.amount, part.source, now, released_at)
        conn.execute(delete(_HA).where(_HA.c.hold_id == hold.id))
        conn.execute(update(_H).where(_H.c.id == hold.id).values(status=status.value, resolved_at=now))
        return transfer

    def _expire(
        self,
        conn: Connection,
        team_id: int,
        accounts: dict[AccountKind, Any],
        lot_id: int,
        expired_before: int,
        amount: int,
        source: str,
        now: datetime,
        effective_at: datetime,
    ) -> None:
        expired_total = expired_before + amount
        self._record(
            conn,
            team_id=team_id,
            key=f"{SYSTEM_KEY_PREFIX}expire:{lot_id}:{expired_total}",
            body_hash=_body_hash("expire", lot=lot_id, amount=amount),
            kind=TransferKind.EXPIRE,
            debit=accounts[AccountKind.WALLET],
            credit=accounts[AccountKind.EXPIRY],
            amount=amount,
            now=now,
            effective_at=effective_at,
            meta=UsageMeta(description=f"{LotSource(source).value} credits expired"),
        )
        conn.execute(update(_L).where(_L.c.id == lot_id).values(expired=expired_total))

    # ---- public operations ---------------------------------------------------------------

    def grant(
        self,
        team_id: int,
        amount: int,
        *,
        key: str,
        expires_at: datetime | None,
        source: LotSource = LotSource.TOPUP,
        description: str | None = None,
        now: datetime | None = None,
    ) -> Transfer:
        """Add credits to a team's wallet (a top-up pack or an admin grant), expiring at `expires_at`."""
        _check_amount(amount)
        _check_key(key)
        now = _check_time(now, "now") or utcnow()
        expires_at = _check_time(expires_at, "expires")
        body = _body_hash("grant", amount=amount, expires_at=expires_at, source=source.value, description=description)

        def op(conn: Connection) -> Transfer:
            accounts = self._lock_and_sweep(conn, team_id, now)
            replay = self._replay(conn, team_id, key, body)
            if replay is not None:
                return replay  # even after its expiry has passed: a replay is the original result
            if expires_at is not None and expires_at <= now:
                raise InvalidInput(f"expires: {expires_at.isoformat()} is not in the future")
            return self._grant(
                conn,
                team_id,
                accounts,
                amount,
                key=key,
                body_hash=body,
                expires_at=expires_at,
                source=source,
                now=now,
                description=description,
            )

        return run_write(self.engine, op)

    def _grant(
        self,
        conn: Connection,
        team_id: int,
        accounts: dict[AccountKind, Any],
        amount: int,
        *,
        key: str,
        body_hash: str,
        expires_at: datetime | None,
        source: LotSource,
        now: datetime,
        effective_at: datetime | None = None,
        description: str | None = None,
        kind: TransferKind = TransferKind.GRANT,
        meta: UsageMeta | None = None,
    ) -> Transfer:
        debit = accounts[AccountKind.REFUND if kind == TransferKind.REFUND else AccountKind.ISSUANCE]
        transfer = self._record(
            conn,
            team_id=team_id,
            key=key,
            body_hash=body_hash,
            kind=kind,
            debit=debit,
            credit=accounts[AccountKind.WALLET],
            amount=amount,
            now=now,
            effective_at=effective_at,
            meta=meta or UsageMeta(description=description),
        )
        conn.execute(
            insert(_L).values(
                team_id=team_id,
                grant_transfer_id=transfer.id,
                source=source.value,
                amount=amount,
                spent=0,
                expired=0,
                expires_at=expires_at,
                created_at=effective_at or now,
            )
        )
        self._lower_next_sweep(conn, accounts[AccountKind.WALLET], expires_at)
        return transfer

    def charge(
        self,
        team_id: int,
        amount: int,
        *,
        key: str,
        meta: UsageMeta,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> Transfer:
        """Spend credits at once (single phase)."""
        _check_amount(amount)
        _check_key(key)
        now = _check_time(now, "now") or utcnow()
        body = _body_hash("charge", amount=amount, meta=meta)

        def op(conn: Connection) -> Transfer | _Rejected:
            plain = self._charge_plain(conn, team_id, amount, key=key, body_hash=body, meta=meta, now=now)
            if plain is not None:
                return plain
            # Anything but the plain case: sweep, replay, rejection, a bad member, several lots.
            accounts = self._lock_and_sweep(conn, team_id, now)
            replay = self._replay(conn, team_id, key, body)
            if replay is not None:
                return replay
            self._check_member(conn, team_id, meta)
            available = self._available(accounts[AccountKind.WALLET])
            if available < amount:
                return self._reject(conn, team_id, key, body, amount, available, now)
            lots = self._live_lots(conn, team_id, now)
            transfer = self._record(
                conn,
                team_id=team_id,
                key=key,
                body_hash=body,
                kind=TransferKind.SPEND,
                debit=accounts[AccountKind.WALLET],
                credit=accounts[AccountKind.SPEND],
                amount=amount,
                now=now,
                meta=meta,
            )
            self._spend_lots(conn, self._take(lots, amount))
            return transfer

        return _raise_if_rejected(team_id, self._run(op, conn))

    def charge_many(
        self, team_id: int, charges: Sequence[Charge], *, now: datetime | None = None, conn: Connection | None = None
    ) -> list[Transfer | InsufficientCredits]:
        """`charge` for each of `charges` in turn, at one instant, in one transaction: each its
        transfer, or the `InsufficientCredits` that refused it (any other error is raised, as
        `charge` raises it). On PostgreSQL the plain case (nothing to sweep, new keys, one lot
        covering them all) is one lock and one statement for the lot, so a settle that pays for
        many requests holds the team's wallet lock for two round trips, not two per request."""
        for item in charges:
            _check_amount(item.amount_credits)
            _check_key(item.key)
        now = _check_time(now, "now") or utcnow()

        def op(c: Connection) -> list[Transfer | InsufficientCredits]:
            plain = self._charge_many_plain(c, team_id, charges, now)
            if plain is not None:
                return plain
            out: list[Transfer | InsufficientCredits] = []
            for item in charges:
                try:
                    out.append(self.charge(team_id, item.amount_credits, key=item.key, meta=item.meta, now=now, conn=c))
                except InsufficientCredits as exc:
                    out.append(exc)
            return out

        return self._run(op, conn) if charges else []

    def _charge_many_plain(
        self, conn: Connection, team_id: int, charges: Sequence[Charge], now: datetime
    ) -> list[Transfer] | None:
        """The plain case of `charge_many` on PostgreSQL (`sql._PG_CHARGE_MANY`), or None when it is
        anything else (nothing written then)."""
        keys = [item.key for item in charges]
        if conn.dialect.name != "postgresql" or len(charges) < 2 or len(set(keys)) != len(keys):
            return None
        metas = [item.meta.columns() for item in charges]
        params: dict[str, Any] = {
            **self._plain_params(conn, team_id, sum(item.amount_credits for item in charges), now),
            "keys": keys,
            "body_hashes": [_body_hash("charge", amount=c.amount_credits, meta=c.meta) for c in charges],
            "amounts": [item.amount_credits for item in charges],
            "categories": [m["category"] for m in metas],
            "features": [m["feature"] for m in metas],
            "member_ids": [m["member_id"] for m in metas],
            "actions": [m["action"] for m in metas],
            "descriptions": [m["description"] for m in metas],
            "data_requested": [m["data_requested"] for m in metas],
        }
        if not conn.exec_driver_sql(_PG_LOCK_WALLET, params).scalar_one():
            return None
        made = dict(conn.exec_driver_sql(_PG_CHARGE_MANY, params).all())
        if not made:
            return None
        check(len(made) == len(charges), "a plain batch of charges is written whole or not at all")
        ids_by_key = {key: transfer_id for transfer_id, key in made.items()}
        return [_spent(ids_by_key[c.key], team_id, c.key, c.amount_credits, c.meta, now) for c in charges]

    def _charge_plain(
        self, conn: Connection, team_id: int, amount: int, *, key: str, body_hash: str, meta: UsageMeta, now: datetime
    ) -> Transfer | None:
        """The plain charge in a few precompiled statements (see `sql._PG_CHARGE`), or None when the
        charge is anything else and must take the general path (nothing is written then)."""
        params = {**self._plain_params(conn, team_id, amount, now), **meta.columns()}
        params.update(key=key, body_hash=body_hash)
        if conn.dialect.name == "sqlite":
            if conn.exec_driver_sql(_SQLITE_CHARGE_SPEND_LOT, params).rowcount != 1:
                return None
            transfer_id = conn.exec_driver_sql(_SQLITE_CHARGE_INSERT, params).lastrowid
            conn.exec_driver_sql(_SPEND_SQL, params)
        else:
            if not conn.exec_driver_sql(_PG_LOCK_WALLET, params).scalar_one():
                return None
            transfer_id = conn.exec_driver_sql(_PG_CHARGE, params).scalar()
            if transfer_id is None:
                return None
        return _spent(transfer_id, team_id, key, amount, meta, now)

    def _plain_params(self, conn: Connection, team_id: int, amount: int, now: datetime) -> dict[str, Any]:
        """The parameters every plain-charge statement shares (`amount`: what the wallet pays)."""
        ids = self._ids(conn, team_id)
        return {
            "team_id": team_id,
            "wallet_id": ids[AccountKind.WALLET],
            "spend_id": ids[AccountKind.SPEND],
            "amount": amount,
            "now": _driver_time(conn, now),
        }

    def hold(
        self,
        team_id: int,
        amount: int,
        *,
        key: str,
        timeout_s: int,
        meta: UsageMeta,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> Hold:
        """Reserve credits for up to `timeout_s` seconds (the first phase of a two-phase charge)."""
        _check_amount(amount)
        _check_key(key)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 0 < timeout_s <= MAX_HOLD_TIMEOUT_S:
            raise InvalidInput(f"timeout_s: must be between 1 and {MAX_HOLD_TIMEOUT_S} seconds, got {timeout_s!r}")
        now = _check_time(now, "now") or utcnow()
        body = _body_hash("hold", amount=amount, timeout_s=timeout_s, meta=meta)

        def op(conn: Connection) -> Hold | _Rejected:
            accounts = self._lock_and_sweep(conn, team_id, now)
            replay = self._replay(conn, team_id, key, body)
            if isinstance(replay, Transfer):
                return self._hold_view(conn, replay.id)
            if replay is not None:
                return replay
            self._check_member(conn, team_id, meta)
            available = self._available(accounts[AccountKind.WALLET])
            if available < amount:
                return self._reject(conn, team_id, key, body, amount, available, now)
            lots = self._live_lots(conn, team_id, now)
            transfer = self._record(
                conn,
                team_id=team_id,
                key=key,
                body_hash=body,
                kind=TransferKind.HOLD,
                debit=accounts[AccountKind.WALLET],
                credit=accounts[AccountKind.SPEND],
                amount=amount,
                now=now,
                meta=meta,
                pending_delta=amount,
                posted_delta=0,
            )
            expires_at = now + timedelta(seconds=timeout_s)
            conn.execute(
                insert(_H).values(
                    id=transfer.id,
                    team_id=team_id,
                    amount=amount,
                    posted_amount=0,
                    status=HoldStatus.PENDING.value,
                    expires_at=expires_at,
                )
            )
            conn.execute(
                insert(_HA),
                [{"hold_id": transfer.id, "lot_id": lot, "amount": part} for lot, part in self._take(lots, amount)],
            )
            self._lower_next_sweep(conn, accounts[AccountKind.WALLET], expires_at)
            return Hold(transfer.id, team_id, amount, 0, HoldStatus.PENDING, expires_at)

        return _raise_if_rejected(team_id, self._run(op, conn))

    def post(
        self,
        team_id: int,
        hold_id: int,
        amount: int | None = None,
        *,
        key: str,
        close: bool = True,
        meta: UsageMeta | None = None,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> Transfer:
        """Spend `amount` (default: all that remains) of a hold. With `close`, release the rest."""
        if amount is not None:
            _check_amount(amount)
        _check_key(key)
        now = _check_time(now, "now") or utcnow()
        body = _body_hash("post", hold=hold_id, amount=amount, close=close, meta=meta)

        def op(conn: Connection) -> Transfer:
            accounts = self._lock_and_sweep(conn, team_id, now)
            replay = self._replay(conn, team_id, key, body)
            if replay is not None:
                return replay
            hold = self._pending_hold(conn, team_id, hold_id)
            self._check_member(conn, team_id, meta)
            remaining = hold.amount - hold.posted_amount
            to_post = remaining if amount is None else amount
            if to_post > remaining:
                raise InvalidInput(f"amount: {to_post} exceeds the {remaining} credits hold {hold_id} still reserves")
            hold_meta = meta or _transfer_from_row(conn.execute(select(_T).where(_T.c.id == hold_id)).one()).meta
            transfer = self._record(
                conn,
                team_id=team_id,
                key=key,
                body_hash=body,
                kind=TransferKind.POST,
                debit=accounts[AccountKind.WALLET],
                credit=accounts[AccountKind.SPEND],
                amount=to_post,
                now=now,
                hold_id=hold_id,
                meta=hold_meta,
                pending_delta=-to_post,
            )
            self._spend_from_hold(conn, hold_id, to_post)
            if close or to_post == remaining:
                self._close_posted_hold(conn, team_id, accounts, hold_id, now)
            return transfer

        return self._run(op, conn)

    def _close_posted_hold(
        self, conn: Connection, team_id: int, accounts: dict[AccountKind, Any], hold_id: int, now: datetime
    ) -> None:
        """Release what a hold still reserves after a post and mark it posted (the caller's transaction)."""
        hold = conn.execute(select(_H).where(_H.c.id == hold_id)).one()
        self._release(
            conn,
            team_id,
            accounts,
            hold,
            now,
            kind=TransferKind.VOID,
            key=f"{SYSTEM_KEY_PREFIX}release:{hold_id}",
            status=HoldStatus.POSTED,
        )

    def _spend_from_hold(self, conn: Connection, hold_id: int, to_post: int) -> None:
        """Spend `to_post` credits from a hold's own lots, soonest-expiring first, and count them as
        posted: lots, then the hold's allocations, then the hold, in the caller's transaction (which
        holds the wallet lock)."""
        allocations = conn.execute(
            select(_HA.c.lot_id, _HA.c.amount)
            .join(_L, _L.c.id == _HA.c.lot_id)
            .where(_HA.c.hold_id == hold_id)
            .order_by(_L.c.expires_at.is_(None), _L.c.expires_at, _L.c.id)
        ).all()
        parts = self._take([(a.lot_id, a.amount) for a in allocations], to_post)
        self._spend_lots(conn, parts)
        for lot_id, part in parts:
            conn.execute(
                update(_HA).where(_HA.c.hold_id == hold_id, _HA.c.lot_id == lot_id).values(amount=_HA.c.amount - part)
            )
        conn.execute(delete(_HA).where(_HA.c.hold_id == hold_id, _HA.c.amount == 0))
        conn.execute(update(_H).where(_H.c.id == hold_id).values(posted_amount=_H.c.posted_amount + to_post))

    def void(
        self, team_id: int, hold_id: int, *, key: str, now: datetime | None = None, conn: Connection | None = None
    ) -> Transfer | None:
        """Release everything a hold still reserves. Returns None if it had nothing left."""
        _check_key(key)
        now = _check_time(now, "now") or utcnow()
        body = _body_hash("void", hold=hold_id)

        def op(conn: Connection) -> Transfer | None:
            accounts = self._lock_and_sweep(conn, team_id, now)
            replay = self._replay(conn, team_id, key, body)
            if replay is not None:
                return replay
            hold = conn.execute(select(_H).where(_H.c.id == hold_id, _H.c.team_id == team_id)).one_or_none()
            if hold is None:
                raise NotFound(f"unknown hold {hold_id} for team {team_id}")
            if hold.status != HoldStatus.PENDING.value:
                # Voiding a hold that already expired or was voided is a no-op, not an error:
                # callers void in cleanup paths where the timeout may have won.
                if hold.status == HoldStatus.POSTED.value:
                    raise HoldNotPending(f"hold {hold_id} is already posted")
                return None
            transfer = self._release(
                conn,
                team_id,
                accounts,
                hold,
                now,
                kind=TransferKind.VOID,
                key=key,
                status=HoldStatus.VOIDED,
                body_hash=body,
            )
            return transfer

        return self._run(op, conn)

    def extend(
        self,
        team_id: int,
        hold_id: int,
        *,
        timeout_s: int,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> Hold:
        """Keep a pending hold alive: it now expires `timeout_s` after `now`, never earlier than it
        did. Moves no credits. A hold that timed out, was posted or was voided is not revived
        (HoldNotPending): its credits may already be spent elsewhere."""
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 0 < timeout_s <= MAX_HOLD_TIMEOUT_S:
            raise InvalidInput(f"timeout_s: must be between 1 and {MAX_HOLD_TIMEOUT_S} seconds, got {timeout_s!r}")
        now = _check_time(now, "now") or utcnow()

        def op(conn: Connection) -> Hold:
            self._lock_and_sweep(conn, team_id, now)  # a hold already timed out is released first
            hold = self._pending_hold(conn, team_id, hold_id)
            until = max(as_utc(hold.expires_at), now + timedelta(seconds=timeout_s))
            conn.execute(update(_H).where(_H.c.id == hold_id).values(expires_at=until))
            return Hold(hold.id, team_id, hold.amount, hold.posted_amount, HoldStatus.PENDING, until)

        return self._run(op, conn)

    def schedule_refund(
        self,
        team_id: int,
        amount: int,
        *,
        key: str,
        earned_at: datetime | None = None,
        meta: UsageMeta | None = None,
    ) -> int:
        """Record a refund earned now; the next cycle close grants it. Returns its id (idempotent)."""
        _check_amount(amount)
        _check_key(key)
        earned_at = _check_time(earned_at, "earned_at") or utcnow()
        meta = meta or UsageMeta()

        def op(conn: Connection) -> int:
            self._accounts(conn, team_id, lock=True)
            existing = conn.execute(
                select(_SR).where(_SR.c.team_id == team_id, _SR.c.idempotency_key == key)
            ).one_or_none()
            if existing is not None:
                if existing.amount != amount:
                    raise IdempotencyConflict(key)
                return existing.id
            return conn.execute(
                insert(_SR)
                .values(
                    team_id=team_id,
                    idempotency_key=key,
                    amount=amount,
                    earned_at=earned_at,
                    category=meta.category.value if meta.category else None,
                    member_id=meta.member_id,
                    description=meta.description,
                    data_requested=meta.data_requested,
                )
                .returning(_SR.c.id)
            ).scalar_one()

        return run_write(self.engine, op)

    def grant_due_refunds(
        self,
        conn: Connection,
        team_id: int,
        accounts: dict[AccountKind, Any],
        *,
        cycle_start: datetime,
        expires_at: datetime | None,
        now: datetime,
    ) -> list[Transfer]:
        """Inside a cycle close: grant every refund earned before `cycle_start` not yet granted."""
        due = conn.execute(
            select(_SR)
            .where(_SR.c.team_id == team_id, _SR.c.granted_transfer_id.is_(None), _SR.c.earned_at < cycle_start)
            .order_by(_SR.c.id)
        ).all()
        granted = []
        for refund in due:
            meta = UsageMeta(
                category=Category(refund.category) if refund.category else None,
                member_id=refund.member_id,
                action="refund",
                description=refund.description,
                data_requested=refund.data_requested,
            )
            transfer = self._grant(
                conn,
                team_id,
                accounts,
                refund.amount,
                key=f"{SYSTEM_KEY_PREFIX}refund:{refund.id}",
                body_hash=_body_hash("refund", refund=refund.id, amount=refund.amount),
                expires_at=expires_at,
                source=LotSource.REFUND,
                now=now,
                effective_at=cycle_start,
                kind=TransferKind.REFUND,
                meta=meta,
            )
            conn.execute(
                update(_SR).where(_SR.c.id == refund.id).values(granted_transfer_id=transfer.id, granted_at=now)
            )
            granted.append(transfer)
        return granted

    def lock_and_sweep(self, conn: Connection, team_id: int, now: datetime) -> dict[AccountKind, Any]:
        """For services that extend a ledger write (cycle close): lock the wallet, then sweep."""
        return self._lock_and_sweep(conn, team_id, now)

    def allot(
        self,
        conn: Connection,
        team_id: int,
        accounts: dict[AccountKind, Any],
        amount: int,
        *,
        cycle_id: int,
        starts_at: datetime,
        expires_at: datetime | None,
        now: datetime,
    ) -> Transfer | None:
        """Inside a cycle open: grant the plan's allotment for one cycle (once per cycle)."""
        if amount <= 0:
            return None
        key = f"{SYSTEM_KEY_PREFIX}allotment:{cycle_id}"
        body = _body_hash("allotment", cycle=cycle_id, amount=amount)
        replay = self._replay(conn, team_id, key, body)
        if replay is not None:
            return replay
        return self._grant(
            conn,
            team_id,
            accounts,
            amount,
            key=key,
            body_hash=body,
            expires_at=expires_at,
            source=LotSource.ALLOTMENT,
            now=now,
            effective_at=starts_at,
            description="billing cycle allotment",
        )

    def sweep(self, team_id: int, now: datetime | None = None) -> None:
        """Record timed-out holds and expired credits now (writes also do this on their own)."""
        now = _check_time(now, "now") or utcnow()
        run_write(self.engine, lambda conn: self.lock_and_sweep(conn, team_id, now))

    # ---- internals -----------------------------------------------------------------------

    def _run(self, op: Callable[[Connection], Any], conn: Connection | None) -> Any:
        # With `conn`, the operation joins the caller's transaction, so that a charge and the
        # record of what it paid for commit together (the caller owns commit and retries).
        return op(conn) if conn is not None else run_write(self.engine, op)

    def _pending_hold(self, conn: Connection, team_id: int, hold_id: int) -> Any:
        hold = conn.execute(select(_H).where(_H.c.id == hold_id, _H.c.team_id == team_id)).one_or_none()
        if hold is None:
            raise NotFound(f"unknown hold {hold_id} for team {team_id}")
        if hold.status != HoldStatus.PENDING.value:
            raise HoldNotPending(f"hold {hold_id} is {hold.status}, not pending")
        return hold


def _spent(transfer_id: int, team_id: int, key: str, amount: int, meta: UsageMeta, now: datetime) -> Transfer:
    """A plain charge's transfer, as the fast paths wrote it."""
    return Transfer(
        id=transfer_id,
        team_id=team_id,
        key=key,
        kind=TransferKind.SPEND,
        amount_credits=amount,
        hold_id=None,
        created_at=now,
        effective_at=now,
        meta=meta,
    )


def _raise_if_rejected(team_id: int, result: Any) -> Any:
    if isinstance(result, _Rejected):
        raise InsufficientCredits(team_id, result.requested, result.available)
    return result
