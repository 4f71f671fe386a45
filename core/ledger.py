"""The credit ledger: double entry, immutable transfers, two-phase holds, expiring credit lots.

Model (after TigerBeetle and Formance):
- Each team has five accounts: its wallet and the system accounts issuance, spend, refund, expiry.
  A transfer moves an amount from a debit account to a credit account and never changes; the sum
  of (credits - debits) over all accounts is therefore always zero.
- Every transfer carries an idempotency key, unique per team. Same key and same body: the original
  result. Same key, other body: `IdempotencyConflict`. A key whose first attempt failed for lack of
  credits is remembered and fails the same way for ever (TigerBeetle's `id_already_failed`).
- Credits live in lots (one per grant) with an expiry; spending takes the soonest-expiring first.
- A hold is a pending transfer that reserves credits from specific lots; it is posted (fully or in
  part), voided, or releases itself when its timeout passes.
- Available = live lots' unspent credits - live holds. It never goes below zero: a charge or hold
  that would overdraw raises `InsufficientCredits` and changes no balance.

Concurrency: every write takes the team's wallet row lock first (`SELECT ... FOR UPDATE` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and only then touches the team's other rows, so writers
of one team serialise and no two writers can deadlock; `run_write` re-runs a transaction whole on
serialization failure or deadlock.

Speed: the plain charge (nothing to sweep, a new key, one lot covering it) is decided by a fast
path of precompiled SQL (on PostgreSQL the lock and one statement); everything else, and anything
the fast path declines, goes through the general code below (see `_FIRST_LOT_SQL`).

Charge, hold, post and void accept `conn=` to run inside a caller's transaction (a data request
settles its charge and records what it bought in one commit).

Time: reads and writes take `now` so that tests and the cycle closer can speak of any instant.
Timed-out holds and expired lots stop counting at once; the transfers that record them (a
`hold_expire` or `expire`, dated when the event took effect) are written by the next write for the
team, which sweeps before doing anything else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from core.errors import InvalidInput, NotFound, TributaryError, check
from storage.db import read_transaction, run_write
from storage.limits import MAX_ACTION_CHARS, MAX_TEXT_CHARS
from storage.models import (
    CreditLot,
    HoldAllocation,
    LedgerAccount,
    LedgerHold,
    LedgerRejection,
    LedgerTransfer,
    Member,
    ScheduledRefund,
)
from storage.models.enums import AccountKind, Category, Feature, HoldStatus, LotSource, TransferKind
from storage.timeutil import as_utc, utcnow

MAX_AMOUNT_CREDITS = 1_000_000_000
MAX_KEY_LENGTH = 200
MAX_HOLD_TIMEOUT_S = 7 * 24 * 3600
SYSTEM_KEY_PREFIX = "sys:"

_T = LedgerTransfer.__table__
_A = LedgerAccount.__table__
_H = LedgerHold.__table__
_L = CreditLot.__table__
_HA = HoldAllocation.__table__
_R = LedgerRejection.__table__
_SR = ScheduledRefund.__table__

# Transfers that move posted credits (as opposed to reserving or releasing them).
_POSTED_KINDS = (TransferKind.GRANT, TransferKind.SPEND, TransferKind.POST, TransferKind.EXPIRE, TransferKind.REFUND)
# Transfers that show in the usage log as spend.
_SPEND_KINDS = (TransferKind.SPEND, TransferKind.POST)


class LedgerError(TributaryError):
    pass


class InsufficientCredits(LedgerError):
    http_status = 402

    def __init__(self, team_id: int, requested_credits: int, available_credits: int) -> None:
        self.team_id = team_id
        self.requested_credits = requested_credits
        self.available_credits = available_credits
        super().__init__(f"insufficient credits: {requested_credits} requested, {available_credits} available")


class IdempotencyConflict(LedgerError):
    http_status = 409

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used for a different request")


class HoldNotPending(LedgerError):
    http_status = 409


@dataclass(frozen=True)
class UsageMeta:
    """What credits were spent on: recorded on every debit, shown in the usage log."""

    category: Category | None = None
    feature: Feature | None = None
    member_id: int | None = None
    action: str | None = None
    description: str | None = None
    data_requested: str | None = None

    def columns(self) -> dict[str, object]:
        """The transfer row's usage columns."""
        return {
            "category": self.category.value if self.category else None,
            "feature": self.feature.value if self.feature else None,
            "member_id": self.member_id,
            "action": self.action,
            "description": self.description,
            "data_requested": self.data_requested,
        }

    def __post_init__(self) -> None:
        for name, limit in (
            ("action", MAX_ACTION_CHARS), ("description", MAX_TEXT_CHARS), ("data_requested", MAX_TEXT_CHARS)
        ):
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise InvalidInput(f"{name}: longer than {limit} characters")
        for name, vocabulary in (("category", Category), ("feature", Feature)):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                object.__setattr__(self, name, vocabulary(value))
            except ValueError:
                allowed = ", ".join(v.value for v in vocabulary)
                raise InvalidInput(f"{name}: {value!r} is not one of {allowed}") from None


_META_FIELDS = tuple(f.name for f in fields(UsageMeta))


@dataclass(frozen=True)
class Transfer:
    id: int
    team_id: int
    key: str
    kind: TransferKind
    amount_credits: int
    hold_id: int | None
    created_at: datetime
    effective_at: datetime
    meta: UsageMeta = field(default_factory=UsageMeta)


@dataclass(frozen=True)
class Hold:
    id: int
    team_id: int
    amount_credits: int
    posted_credits: int
    status: HoldStatus
    expires_at: datetime

    @property
    def remaining_credits(self) -> int:
        return self.amount_credits - self.posted_credits


@dataclass(frozen=True)
class Balance:
    team_id: int
    available_credits: int  # what can be spent now
    held_credits: int  # reserved by live holds
    as_of: datetime

    @property
    def total_credits(self) -> int:
        return self.available_credits + self.held_credits


@dataclass(frozen=True)
class LotView:
    id: int
    source: LotSource
    amount_credits: int
    spent_credits: int
    expired_credits: int
    expires_at: datetime | None


@dataclass(frozen=True)
class UsageRow:
    date: datetime
    feature: str | None
    action: str | None
    description: str | None
    credits: int  # positive: spent; negative: refunded
    data_requested: str | None
    user: str | None
    category: str | None
    kind: TransferKind


@dataclass(frozen=True)
class _Rejected:
    requested: int
    available: int


# --------------------------------------------------------------------------------------------
# Validation


def _check_amount(amount: int, name: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput(f"{name}: must be a whole number of credits, got {amount!r}")
    if amount <= 0:
        raise InvalidInput(f"{name}: must be positive, got {amount}")
    if amount > MAX_AMOUNT_CREDITS:
        raise InvalidInput(f"{name}: {amount} exceeds the limit of {MAX_AMOUNT_CREDITS}")
    return amount


def _check_key(key: str, *, system: bool = False) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("idempotency key: must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotency key: longer than {MAX_KEY_LENGTH} characters")
    if not system and key.startswith(SYSTEM_KEY_PREFIX):
        raise InvalidInput(f"idempotency key: the prefix {SYSTEM_KEY_PREFIX!r} is reserved")
    return key


def _check_time(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name}: must be a date and time, got {value!r}")
    return as_utc(value)


def _body_hash(operation: str, **body: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value).isoformat()
        if isinstance(value, UsageMeta):
            # UsageMeta is flat: the same mapping as dataclasses.asdict, without its deep copy.
            return {name: getattr(value, name) for name in _META_FIELDS}
        raise TypeError(type(value))

    canonical = json.dumps({"op": operation, **body}, sort_keys=True, default=default)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# The ledger


@dataclass(frozen=True)
class _AccountRef:
    id: int


# Hot-path statements are built once: constructing SQLAlchemy expressions per call cost more
# Python time than the database spent executing them, all of it inside the wallet lock.
_LOCK_WALLET = (
    select(_A.c.id, _A.c.credits_posted, _A.c.debits_posted, _A.c.debits_pending, _A.c.next_sweep_at)
    .where(_A.c.id == bindparam("wallet_id"))
    .with_for_update()
)
_READ_WALLET = select(_A.c.id, _A.c.credits_posted, _A.c.debits_posted, _A.c.debits_pending, _A.c.next_sweep_at).where(
    _A.c.id == bindparam("wallet_id")
)
_ACCOUNT_IDS = select(_A.c.id, _A.c.kind).where(_A.c.team_id == bindparam("team_id"))
_REPLAY = union_all(
    select(literal("transfer").label("source"), _T.c.id, _T.c.body_hash).where(
        _T.c.team_id == bindparam("team_id"), _T.c.idempotency_key == bindparam("key")
    ),
    select(literal("rejection").label("source"), _R.c.id, _R.c.body_hash).where(
        _R.c.team_id == bindparam("team_id"), _R.c.idempotency_key == bindparam("key")
    ),
)
_RESERVED_LIVE = (
    select(_HA.c.lot_id, func.sum(_HA.c.amount).label("reserved"))
    .join(_H, _H.c.id == _HA.c.hold_id)
    .where(
        _H.c.team_id == bindparam("team_id"),
        _H.c.status == HoldStatus.PENDING.value,
        _H.c.expires_at > bindparam("now"),
    )
    .group_by(_HA.c.lot_id)
    .subquery()
)
_FREE = _L.c.amount - _L.c.spent - _L.c.expired - func.coalesce(_RESERVED_LIVE.c.reserved, 0)
_LIVE_LOTS = (
    select(_L.c.id, _FREE.label("free"))
    .outerjoin(_RESERVED_LIVE, _RESERVED_LIVE.c.lot_id == _L.c.id)
    .where(
        _L.c.team_id == bindparam("team_id"),
        or_(_L.c.expires_at.is_(None), _L.c.expires_at > bindparam("now")),
        _L.c.amount - _L.c.spent - _L.c.expired > 0,
    )
    .order_by(_L.c.expires_at.is_(None), _L.c.expires_at, _L.c.id)
)
_INSERT_TRANSFER = insert(_T).returning(_T.c.id)
_MOVE = (
    update(_A)
    .where(_A.c.id.in_([bindparam("debit_id"), bindparam("credit_id")]))
    .values(
        debits_posted=_A.c.debits_posted + case((_A.c.id == bindparam("debit_id"), bindparam("posted")), else_=0),
        credits_posted=_A.c.credits_posted + case((_A.c.id == bindparam("credit_id"), bindparam("posted")), else_=0),
        debits_pending=_A.c.debits_pending + case((_A.c.id == bindparam("debit_id"), bindparam("pending")), else_=0),
        credits_pending=_A.c.credits_pending + case((_A.c.id == bindparam("credit_id"), bindparam("pending")), else_=0),
    )
)
_SPEND_LOT = update(_L).where(_L.c.id == bindparam("lot_id")).values(spent=_L.c.spent + bindparam("part"))
_MEMBER_TEAM = select(Member.__table__.c.team_id).where(Member.__table__.c.id == bindparam("member_id"))


# ---- the charge fast path: hand-written SQL per dialect -----------------------------------------
# A plain charge (nothing to sweep, enough credits, a new key, one lot covering it) is nearly all
# charges, and all of it runs inside the wallet lock, so it is sent as precompiled SQL through
# `exec_driver_sql`: no expression building, compiling or bind processing per call (that Python
# time was most of a charge). Anything else falls back to the general path, which re-reads
# everything under the same lock: the fast path only ever decides the plain case, and decides it
# the same way. The first live lot below is the one `_live_lots` + `_take` would spend from first;
# when it alone covers the amount, the general path takes exactly (that lot, amount) too.
_FIRST_LOT_SQL = f"""
    SELECT l.id AS lot_id, l.amount - l.spent - l.expired - COALESCE(r.reserved, 0) AS free
    FROM credit_lot AS l
    LEFT JOIN (
        SELECT a.lot_id, SUM(a.amount) AS reserved
        FROM hold_allocation AS a JOIN ledger_hold AS h ON h.id = a.hold_id
        WHERE h.team_id = :team_id AND h.status = '{HoldStatus.PENDING.value}' AND h.expires_at > :now
        GROUP BY a.lot_id
    ) AS r ON r.lot_id = l.id
    WHERE l.team_id = :team_id
      AND (l.expires_at IS NULL OR l.expires_at > :now)
      AND l.amount - l.spent - l.expired - COALESCE(r.reserved, 0) > 0
    ORDER BY l.expires_at IS NULL, l.expires_at, l.id
    LIMIT 1
"""
# The key is new (neither a transfer nor a remembered rejection) and the member, if any, is the team's.
_KEY_NEW_AND_MEMBER_OK_SQL = """
    NOT EXISTS (SELECT 1 FROM ledger_transfer WHERE team_id = :team_id AND idempotency_key = :key)
    AND NOT EXISTS (SELECT 1 FROM ledger_rejection WHERE team_id = :team_id AND idempotency_key = :key)
    AND (CAST(:member_id AS INTEGER) IS NULL
         OR EXISTS (SELECT 1 FROM member WHERE id = :member_id AND team_id = :team_id))
"""
_TRANSFER_COLUMNS_SQL = """ledger_transfer (
    team_id, idempotency_key, body_hash, kind, debit_account_id, credit_account_id, amount, hold_id,
    category, feature, member_id, action, description, data_requested, created_at, effective_at)"""
# "Plain" read off the wallet row: swept up to `now` (so its totals are exact) and able to pay.
_WALLET_PLAIN_SQL = """
    (w.next_sweep_at IS NULL OR w.next_sweep_at > :now)
    AND w.credits_posted - w.debits_posted - w.debits_pending >= :amount
"""
_SPEND_SQL = """
    UPDATE ledger_account SET
        debits_posted = debits_posted + CASE WHEN id = :wallet_id THEN :amount ELSE 0 END,
        credits_posted = credits_posted + CASE WHEN id = :spend_id THEN :amount ELSE 0 END
    WHERE id IN (:wallet_id, :spend_id)
"""

# SQLite: BEGIN IMMEDIATE already made this the only writer and there are no round trips to save,
# only SQLAlchemy's Python per statement (more for statements returning rows). So the first
# statement spends from the lot only in the plain case (its row count says which), and the other
# two return nothing (the transfer id is the cursor's lastrowid).
_SQLITE_CHARGE_SPEND_LOT = f"""
    UPDATE credit_lot SET spent = spent + :amount
    WHERE id = (SELECT lot_id FROM ({_FIRST_LOT_SQL}) WHERE free >= :amount)
      AND (SELECT {_WALLET_PLAIN_SQL} FROM ledger_account AS w WHERE w.id = :wallet_id)
      AND {_KEY_NEW_AND_MEMBER_OK_SQL}
"""
_SQLITE_CHARGE_INSERT = f"""
    INSERT INTO {_TRANSFER_COLUMNS_SQL}
    VALUES (:team_id, :key, :body_hash, '{TransferKind.SPEND.value}', :wallet_id, :spend_id, :amount, NULL,
            :category, :feature, :member_id, :action, :description, :data_requested, :now, :now)
"""


def _psycopg(sql: str) -> str:
    """`:name` placeholders as psycopg's `%(name)s` (the templates contain no `::` casts)."""
    return re.sub(r":([a-z_]+)", r"%(\1)s", sql)


# PostgreSQL: each statement is a round trip made while the wallet row is locked, so after the
# lock everything is ONE statement: data-modifying CTEs choose the lot, check the key and the
# member, insert the transfer and move both accounts and the lot, or do nothing at all (then the
# general path takes over). It must be a statement of its own, after the lock: a statement's
# snapshot is taken when it starts, so checks folded into the locking statement could miss what
# the previous lock holder committed while this one waited.
_PG_LOCK_WALLET = _psycopg(
    f"SELECT {_WALLET_PLAIN_SQL} AS plain FROM ledger_account AS w WHERE w.id = :wallet_id FOR UPDATE"
)
_PG_CHARGE = _psycopg(f"""
    WITH lot AS ({_FIRST_LOT_SQL}),
    chosen AS (
        SELECT lot_id FROM lot WHERE free >= :amount AND {_KEY_NEW_AND_MEMBER_OK_SQL}
    ),
    transfer AS (
        INSERT INTO {_TRANSFER_COLUMNS_SQL}
        -- Typed: in a SELECT list PostgreSQL would take an untyped NULL parameter for text.
        SELECT :team_id, :key, :body_hash, '{TransferKind.SPEND.value}', :wallet_id, :spend_id, :amount, NULL,
               CAST(:category AS VARCHAR), CAST(:feature AS VARCHAR), CAST(:member_id AS INTEGER),
               CAST(:action AS VARCHAR), CAST(:description AS VARCHAR), CAST(:data_requested AS VARCHAR),
               CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
        FROM chosen
        RETURNING id
    ),
    moved AS ({_SPEND_SQL} AND EXISTS (SELECT 1 FROM chosen)),
    spent AS (UPDATE credit_lot SET spent = spent + :amount WHERE id = (SELECT lot_id FROM chosen))
    SELECT id FROM transfer
""")


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # A team's account ids never change once opened.
        self._account_ids: dict[int, dict[AccountKind, int]] = {}

    # ---- accounts ------------------------------------------------------------------------

    @staticmethod
    def open_accounts(conn: Connection, team_id: int) -> None:
        """Create a team's five accounts. Called by core.accounts inside team creation."""
        conn.execute(insert(_A), [{"team_id": team_id, "kind": kind.value} for kind in AccountKind])

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

    def _live_lots(self, conn: Connection, team_id: int, now: datetime) -> list[tuple[int, int]]:
        """(lot id, free credits) of lots usable at `now`, soonest-expiring first."""
        rows = conn.execute(_LIVE_LOTS, {"team_id": team_id, "now": now}).all()
        return [(row.id, int(row.free)) for row in rows if row.free > 0]

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

    def _charge_plain(
        self, conn: Connection, team_id: int, amount: int, *, key: str, body_hash: str, meta: UsageMeta, now: datetime
    ) -> Transfer | None:
        """The plain charge in a few precompiled statements (see `_PG_CHARGE`), or None when the
        charge is anything else and must take the general path (nothing is written then)."""
        ids = self._ids(conn, team_id)
        params = {
            "team_id": team_id,
            "wallet_id": ids[AccountKind.WALLET],
            "spend_id": ids[AccountKind.SPEND],
            "amount": amount,
            "key": key,
            "body_hash": body_hash,
            **meta.columns(),
            "now": _driver_time(conn, now),
        }
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
            # Spend from the hold's own lots, soonest-expiring first.
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
                    update(_HA)
                    .where(_HA.c.hold_id == hold_id, _HA.c.lot_id == lot_id)
                    .values(amount=_HA.c.amount - part)
                )
            conn.execute(delete(_HA).where(_HA.c.hold_id == hold_id, _HA.c.amount == 0))
            conn.execute(update(_H).where(_H.c.id == hold_id).values(posted_amount=_H.c.posted_amount + to_post))
            if close or to_post == remaining:
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
            return transfer

        return self._run(op, conn)

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
        kinds = [k.value for k in _SPEND_KINDS] + ([TransferKind.REFUND.value] if include_refunds else [])
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

    @staticmethod
    def _hold_view(conn: Connection, hold_id: int) -> Hold:
        row = conn.execute(select(_H).where(_H.c.id == hold_id)).one_or_none()
        if row is None:
            raise NotFound(f"unknown hold {hold_id}")
        return Hold(row.id, row.team_id, row.amount, row.posted_amount, HoldStatus(row.status), as_utc(row.expires_at))


_TIME_BINDERS: dict[str, Callable[[datetime], Any]] = {}


def _driver_time(conn: Connection, value: datetime) -> Any:
    """`value` as SQLAlchemy would send it to this driver for a UTCDateTime column (on SQLite the
    exact text format stored), for statements sent through `exec_driver_sql`."""
    name = conn.dialect.name
    bind = _TIME_BINDERS.get(name)
    if bind is None:
        # The dialect's implementation: UTCDateTime's own processor alone stops at an aware
        # datetime, which sqlite3 would store in another text format (and compare wrongly).
        processor = _T.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        bind = _TIME_BINDERS[name] = processor or (lambda v: v)
    return bind(value)


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


def _raise_if_rejected(team_id: int, result: Any) -> Any:
    if isinstance(result, _Rejected):
        raise InsufficientCredits(team_id, result.requested, result.available)
    return result


__all__ = [
    "Balance",
    "Hold",
    "HoldNotPending",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Ledger",
    "LedgerError",
    "LotView",
    "Transfer",
    "UsageMeta",
    "UsageRow",
]
