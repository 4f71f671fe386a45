"""Digest preferences of admins, and sending the digests that are due, at most once per period.

Each (team, admin, period kind, period start) has one row in `digest_delivery`, unique. A worker
claims the row (status `sending` with a lease) before it calls `deliver`, so a second worker running
at the same time skips it; success marks it `delivered` for good; an exception marks it `failed`,
and the next run claims it again. A worker that dies mid-delivery leaves a lease that runs out, and
then the digest is retried: `delivery_id` is given to `deliver` so that it can drop a duplicate.

Only the most recent complete period is due (yesterday, last week): a digest that could not be
sent before the next period ended is superseded by the newer one, not sent late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core.accounts import Accounts
from core.errors import InvalidInput
from core.usage.chart import render_chart
from core.usage.digest import UsageDigest, UsageDigests
from core.usage.periods import Period, last_complete_period, parse_period
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import Member, Team
from storage.models.digests import DeliveryStatus, DigestDeliveryRecord, DigestPeriod, DigestPreference
from storage.models.enums import Role
from storage.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_P = DigestPreference.__table__
_D = DigestDeliveryRecord.__table__
_M = Member.__table__
_TEAM = Team.__table__
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class DigestPreferenceInfo:
    team_id: int
    member_id: int
    member_email: str
    period: DigestPeriod


@dataclass(frozen=True)
class DigestDelivery:
    """What `deliver` receives: one digest for one admin."""

    delivery_id: int  # stable across retries of the same (team, admin, period)
    team_id: int
    team_name: str
    member_id: int
    member_email: str
    member_slack_user_id: str | None
    digest: UsageDigest

    def chart_png(self) -> bytes:
        return render_chart(self.digest)


@dataclass(frozen=True)
class _Due:
    team_id: int
    team_name: str
    member_id: int
    member_email: str
    slack_user_id: str | None
    period: Period


class DigestDeliveries:
    def __init__(self, engine: Engine, digests: UsageDigests, accounts: Accounts, *, lease_s: int = 600) -> None:
        self.engine = engine
        self.digests = digests
        self.accounts = accounts
        self.lease_s = lease_s

    # ---- preferences ---------------------------------------------------------------------

    def set_preference(
        self, team_ref: int | str, member_ref: int | str, period: DigestPeriod | str, *, now: datetime | None = None
    ) -> DigestPreferenceInfo:
        """Choose how often an admin receives the team's digest: daily, weekly or off."""
        period = parse_period(period, allow_off=True)
        team = self.accounts.team(team_ref)
        member = self.accounts.member(member_ref, team.id)
        if member.role != Role.ADMIN:
            raise InvalidInput(f"member {member.email}: not an admin of team {team.name!r}; only admins get digests")
        now = as_utc(now or utcnow())
        values = {"team_id": team.id, "member_id": member.id, "period": period.value, "updated_at": now}
        upsert = (sqlite_insert if is_sqlite(self.engine) else pg_insert)(_P).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[_P.c.team_id, _P.c.member_id], set_={"period": period.value, "updated_at": now}
        )
        run_write(self.engine, lambda conn: conn.execute(upsert))
        return DigestPreferenceInfo(team.id, member.id, member.email, period)

    def preferences(self, team_ref: int | str) -> list[DigestPreferenceInfo]:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_P.c.member_id, _P.c.period, _M.c.email)
                .join(_M, _M.c.id == _P.c.member_id)
                .where(_P.c.team_id == team.id)
                .order_by(_M.c.email)
            ).all()
        return [DigestPreferenceInfo(team.id, r.member_id, r.email, DigestPeriod(r.period)) for r in rows]

    # ---- sending -------------------------------------------------------------------------

    def send_due_digests(self, now: datetime, deliver: Callable[[DigestDelivery], None]) -> int:
        """Deliver every digest due at `now` that no run has delivered yet. Returns how many it delivered.

        Safe to run any number of times and from several workers at once."""
        now = as_utc(now)
        built: dict[tuple[int, Period], UsageDigest] = {}
        delivered = 0
        for due in self._due(now):
            delivery_id = self._claim(due, now)
            if delivery_id is None:
                continue
            try:
                key = (due.team_id, due.period)
                if key not in built:
                    built[key] = self.digests.build_for(due.team_id, due.period, now=now)
                deliver(
                    DigestDelivery(
                        delivery_id=delivery_id,
                        team_id=due.team_id,
                        team_name=due.team_name,
                        member_id=due.member_id,
                        member_email=due.member_email,
                        member_slack_user_id=due.slack_user_id,
                        digest=built[key],
                    )
                )
            except Exception as exc:  # whatever `deliver` raises, the digest stays due
                log.exception("digest delivery %s failed; it will be retried on the next run", delivery_id)
                self._finish(delivery_id, DeliveryStatus.FAILED, now, error=f"{type(exc).__name__}: {exc}")
                continue
            self._finish(delivery_id, DeliveryStatus.DELIVERED, now)
            delivered += 1
        return delivered

    def _due(self, now: datetime) -> list[_Due]:
        periods = {kind: last_complete_period(kind, now) for kind in (DigestPeriod.DAILY, DigestPeriod.WEEKLY)}
        with read_transaction(self.engine) as conn:
            prefs = conn.execute(
                select(
                    _P.c.team_id,
                    _P.c.member_id,
                    _P.c.period,
                    _TEAM.c.name,
                    _TEAM.c.created_at,
                    _M.c.email,
                    _M.c.slack_user_id,
                )
                .join(_M, and_(_M.c.id == _P.c.member_id, _M.c.team_id == _P.c.team_id))
                .join(_TEAM, _TEAM.c.id == _P.c.team_id)
                .where(_P.c.period != DigestPeriod.OFF.value, _M.c.role == Role.ADMIN.value)
                .order_by(_P.c.team_id, _P.c.member_id)
            ).all()
            settled = self._settled(conn, periods, now)
        due = []
        for p in prefs:
            period = periods[DigestPeriod(p.period)]
            # A team has no digest for a period that ended before it existed.
            if period.end <= as_utc(p.created_at) or (p.team_id, p.member_id, p.period) in settled:
                continue
            due.append(_Due(p.team_id, p.name, p.member_id, p.email, p.slack_user_id, period))
        return due

    @staticmethod
    def _settled(conn: Connection, periods: dict[DigestPeriod, Period], now: datetime) -> set[tuple[int, int, str]]:
        """(team, member, kind) already delivered, or being delivered by a live claim, for these periods."""
        rows = conn.execute(
            select(_D.c.team_id, _D.c.member_id, _D.c.period_kind).where(
                or_(*[and_(_D.c.period_kind == k.value, _D.c.period_start == p.start) for k, p in periods.items()]),
                or_(
                    _D.c.status == DeliveryStatus.DELIVERED.value,
                    and_(_D.c.status == DeliveryStatus.SENDING.value, _D.c.claimed_until > now),
                ),
            )
        ).all()
        return {(r.team_id, r.member_id, r.period_kind) for r in rows}

    def _claim(self, due: _Due, now: datetime) -> int | None:
        """Take the delivery for this run, or None if it is delivered or another worker holds it."""
        lease_until = now + timedelta(seconds=self.lease_s)

        def op(conn: Connection) -> int | None:
            row = conn.execute(
                select(_D).where(
                    _D.c.team_id == due.team_id,
                    _D.c.member_id == due.member_id,
                    _D.c.period_kind == due.period.kind.value,
                    _D.c.period_start == due.period.start,
                )
            ).one_or_none()
            if row is None:
                return conn.execute(
                    insert(_D)
                    .values(
                        team_id=due.team_id,
                        member_id=due.member_id,
                        period_kind=due.period.kind.value,
                        period_start=due.period.start,
                        period_end=due.period.end,
                        status=DeliveryStatus.SENDING.value,
                        attempts=1,
                        claimed_until=lease_until,
                        created_at=now,
                    )
                    .returning(_D.c.id)
                ).scalar_one()
            if row.status == DeliveryStatus.DELIVERED.value:
                return None
            if row.status == DeliveryStatus.SENDING.value and as_utc(row.claimed_until) > now:
                return None
            # Failed, or its worker's lease ran out: take it over, unless another worker just did.
            taken = conn.execute(
                update(_D)
                .where(_D.c.id == row.id, _D.c.status == row.status, _D.c.attempts == row.attempts)
                .values(status=DeliveryStatus.SENDING.value, attempts=row.attempts + 1, claimed_until=lease_until)
            )
            return row.id if taken.rowcount == 1 else None

        try:
            return run_write(self.engine, op)
        except IntegrityError:
            # Another worker inserted the same (team, member, period) first: it is theirs.
            return None

    def _finish(self, delivery_id: int, status: DeliveryStatus, now: datetime, *, error: str | None = None) -> None:
        values = {"status": status.value, "claimed_until": None, "last_error": error and error[:MAX_ERROR_LENGTH]}
        if status == DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        run_write(self.engine, lambda conn: conn.execute(update(_D).where(_D.c.id == delivery_id).values(**values)))


__all__ = ["DigestDelivery", "DigestDeliveries", "DigestPreferenceInfo"]
