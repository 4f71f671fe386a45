"""The periodic work, as plain functions (tasks.py schedules them; tests and the CLI call them).

Each is idempotent and safe with several workers at once: the services they call act only on what
is due and take the rows they change under lock (cycle close, ledger sweep), or are idempotent by
key (bounce decisions, digests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from storage.db import read_transaction
from storage.models import BillingCycle, CreditLot, LedgerHold
from storage.models.enums import HoldStatus
from storage.timeutil import as_utc, utcnow

if TYPE_CHECKING:
    from core.services import Services
    from core.usage.delivery import DigestDelivery

log = logging.getLogger(__name__)

_C = BillingCycle.__table__
_H = LedgerHold.__table__
_L = CreditLot.__table__


def close_due_cycles(services: Services, now: datetime | None = None) -> int:
    """Close the billing cycle of every team whose open cycle has ended. Returns cycles closed."""
    now = as_utc(now or utcnow())
    with read_transaction(services.engine) as conn:
        team_ids = (
            conn.execute(
                select(_C.c.team_id)
                .where(_C.c.closed_at.is_(None), _C.c.ends_at <= now)
                .distinct()
                .order_by(_C.c.team_id)
            )
            .scalars()
            .all()
        )
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


@dataclass(frozen=True)
class DigestRun:
    installed: bool  # False when this process was started without a digest deliverer
    sent: int = 0


def send_due_digests(
    services: Services, deliver: Callable[[DigestDelivery], None] | None, now: datetime | None = None
) -> DigestRun:
    """Send the usage digests that are due. `deliver` comes from the front end that started the
    worker (the Slack bot's), injected so that core never imports a front end."""
    if deliver is None:
        log.info("digests: no deliverer installed in this worker; skipped")
        return DigestRun(installed=False)
    now = as_utc(now or utcnow())
    return DigestRun(installed=True, sent=services.digest_deliveries.send_due_digests(now, deliver))


@dataclass(frozen=True)
class EngagementRun:
    returned_to_verified: int  # likely_to_engage addresses whose recency window ran out
    deliveries_counted: int  # sends counted as delivered without a bounce
    job_change_notices: int  # owners told of a move not told before


def run_engagement(services: Services, now: datetime | None = None) -> EngagementRun:
    """The engagement clock and the job-change detection sweep (both idempotent)."""
    now = as_utc(now or utcnow())
    clock = services.engagement.run_clock(now)
    told = services.job_changes.detect(now)
    return EngagementRun(clock.returned_to_verified, clock.deliveries_counted, told)


__all__ = ["DigestRun", "EngagementRun", "close_due_cycles", "run_engagement", "send_due_digests", "sweep_due_holds"]
