"""What a data request cost: the credits it was charged when it settled, and what paid them.

Asked by a job resuming after a crash, to tell whether one of its earlier runs paid for a request
that now replays free (see core.enrichment.jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from core.ledger import Ledger
from storage.db import read_transaction
from storage.models import DataRequest
from storage.models.enums import Feature

_DR = DataRequest.__table__


@dataclass(frozen=True)
class RequestCost:
    credits: int  # what the request was charged when it settled (0: it was free)
    from_hold_id: int | None  # the hold its charge was posted from (a job's cap, or its own); None: the wallet


def request_cost(
    engine: Engine, ledger: Ledger, request_id: int, *, member_id: int, feature: Feature, settled_since: datetime
) -> RequestCost | None:
    """What request `request_id` cost, if it was settled for `member_id` through `feature` at or after
    `settled_since`; None if it was not (someone else, elsewhere or earlier settled it)."""
    with read_transaction(engine) as conn:
        row = conn.execute(
            select(_DR.c.credits_charged, _DR.c.charge_transfer_id).where(
                _DR.c.id == request_id,
                _DR.c.member_id == member_id,
                _DR.c.feature == Feature(feature).value,
                _DR.c.settled_at >= settled_since,
            )
        ).one_or_none()
    if row is None:
        return None
    if not row.credits_charged or row.charge_transfer_id is None:
        return RequestCost(int(row.credits_charged or 0), None)
    return RequestCost(int(row.credits_charged), ledger.transfer(row.charge_transfer_id).hold_id)
