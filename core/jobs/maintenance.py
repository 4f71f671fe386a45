"""The periodic work, as plain functions (tasks.py schedules them; tests and the CLI call them).

Each is idempotent and safe with several workers at once: the services they call act only on what
is due and take the rows they change under lock (cycle close, ledger sweep), or are idempotent by
key (bounce decisions, digests).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from storage.db import read_transaction
from storage.models import BillingCycle, CreditLot, LedgerHold
from storage.models.enums import HoldStatus
from storage.timeutil import as_utc, utcnow

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

_C = BillingCycle.__table__
_H = LedgerHold.__table__
_L = CreditLot.__table__


def close_due_cycles(services: Services, now: datetime | None = None) -> int:
    """Close the billing cycle of every team whose open cycle has ended. Returns cycles closed."""
    now = as_utc(now or utcnow())
    with read_transaction(services.engine) as conn:
        team_ids = conn.execute(
            select(_C.c.team_id).where(_C.c.closed_at.is_(None), _C.c.ends_at <= now).distinct().order_by(_C.c.team_id)
        ).scalars().all()
    closed = 0
    for team_id in team_ids:
        closed += len(services.accounts.close_cycle(team_id, now=now).closed)
    return closed


def sweep_due_holds(services: Services, now: datetime | None = None) -> int:
    """Record timed-out holds and expired credits for every team that has some. Returns teams swept."""
    now = as_utc(now or utcnow())
    with read_transaction(services.engine) as conn:
        holds = select(_H.c.team_id).where(_H.c.status == HoldStatus.PENDING.value, _H.c.expires_at <= now)
        lots = select(_L.c.team_id).where(
            and_(_L.c.expires_at.is_not(None), _L.c.expires_at <= now),
            _L.c.amount - _L.c.spent - _L.c.expired > 0,
        )
        team_ids = sorted(set(conn.execute(holds.union(lots)).scalars().all()))
    for team_id in team_ids:
        services.ledger.sweep(team_id, now)
    return len(team_ids)


def digest_sender(services: Services) -> Callable[[datetime], Any] | None:
    """The digest engineer's `send_due_digests`, named by settings.digest_task ("module:function",
    taking (services, now) or (now)); None while it is not installed."""
    module_name, _, attr = services.settings.digest_task.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    fn = getattr(module, attr, None)
    if fn is None:
        return None
    if len(inspect.signature(fn).parameters) >= 2:
        return lambda now: fn(services, now)
    return fn


@dataclass(frozen=True)
class DigestRun:
    installed: bool  # False until the digest sender exists
    result: Any = None  # what the sender returned (e.g. digests sent)


def send_due_digests(services: Services, now: datetime | None = None) -> DigestRun:
    now = as_utc(now or utcnow())
    sender = digest_sender(services)
    if sender is None:
        log.info("digests: no sender installed (%s); skipped", services.settings.digest_task)
        return DigestRun(installed=False)
    return DigestRun(installed=True, result=sender(now))


__all__ = ["DigestRun", "close_due_cycles", "digest_sender", "send_due_digests", "sweep_due_holds"]
