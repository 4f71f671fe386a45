"""The ledger's SQL: its tables, the statements built once, and the fast path's hand-written text."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, literal, or_, select, union_all, update

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
from storage.models.enums import HoldStatus, TransferKind

_T = LedgerTransfer.__table__
_A = LedgerAccount.__table__
_H = LedgerHold.__table__
_L = CreditLot.__table__
_HA = HoldAllocation.__table__
_R = LedgerRejection.__table__
_SR = ScheduledRefund.__table__

# Transfers that move posted credits (as opposed to reserving or releasing them).
_POSTED_KINDS = (TransferKind.GRANT, TransferKind.SPEND, TransferKind.POST, TransferKind.EXPIRE, TransferKind.REFUND)

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

# Many plain charges of one team in one statement (`Ledger.charge_many`), after one lock taken for
# their total: the same rows as that many `_PG_CHARGE`s in a row, when the first lot covers them all
# (then each of them would have taken that lot). All or nothing: any key used before, any bad
# member or a lot too small, and nothing is written (the caller charges one by one).
_PG_CHARGE_MANY = _psycopg(f"""
    WITH item AS (
        SELECT * FROM unnest(
            CAST(:keys AS VARCHAR[]), CAST(:body_hashes AS VARCHAR[]), CAST(:amounts AS BIGINT[]),
            CAST(:categories AS VARCHAR[]), CAST(:features AS VARCHAR[]), CAST(:member_ids AS INTEGER[]),
            CAST(:actions AS VARCHAR[]), CAST(:descriptions AS VARCHAR[]), CAST(:data_requested AS VARCHAR[])
        ) WITH ORDINALITY AS i(i_key, i_body_hash, i_amount, i_category, i_feature, i_member_id, i_action,
                               i_description, i_data_requested, i_n)
    ),
    lot AS ({_FIRST_LOT_SQL}),
    chosen AS (
        SELECT lot_id FROM lot WHERE free >= :amount AND NOT EXISTS (
            SELECT 1 FROM item WHERE
                EXISTS (SELECT 1 FROM ledger_transfer WHERE team_id = :team_id AND idempotency_key = i_key)
                OR EXISTS (SELECT 1 FROM ledger_rejection WHERE team_id = :team_id AND idempotency_key = i_key)
                OR (i_member_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM member WHERE id = i_member_id AND team_id = :team_id))
        )
    ),
    transfer AS (
        INSERT INTO {_TRANSFER_COLUMNS_SQL}
        SELECT :team_id, i_key, i_body_hash, '{TransferKind.SPEND.value}', :wallet_id, :spend_id, i_amount, NULL,
               i_category, i_feature, i_member_id, i_action, i_description, i_data_requested,
               CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
        FROM item, chosen ORDER BY i_n
        RETURNING id, idempotency_key
    ),
    moved AS ({_SPEND_SQL} AND EXISTS (SELECT 1 FROM chosen)),
    spent AS (UPDATE credit_lot SET spent = spent + :amount WHERE id = (SELECT lot_id FROM chosen))
    SELECT id, idempotency_key FROM transfer
""")


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
