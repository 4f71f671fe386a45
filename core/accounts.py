"""Teams, members, plans and billing cycles; cycle close grants and expires credits in the ledger."""

from __future__ import annotations

import calendar
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import InvalidInput, NotFound, TributaryError, check
from core.ledger import MAX_AMOUNT_CREDITS, Ledger
from storage.db import read_transaction, run_write
from storage.models import BillingCycle, Member, Plan, Team
from storage.models.enums import Role
from storage.timeutil import as_utc, utcnow

MAX_NAME_LENGTH = 128
# A team reference starting with this is an id (`#3`); anything else is a name.
TEAM_ID_PREFIX = "#"
MAX_CATCH_UP_CYCLES = 120  # a team left unattended ten years still closes in one call

_PLAN = Plan.__table__
_TEAM = Team.__table__
_MEMBER = Member.__table__
_CYCLE = BillingCycle.__table__


class AlreadyExists(TributaryError):
    http_status = 409


@dataclass(frozen=True)
class PlanInfo:
    id: int
    name: str
    monthly_credits: int
    rollover: bool
    price_email_credits: int
    price_mobile_credits: int
    price_export_credits: int
    builtin: bool


@dataclass(frozen=True)
class TeamInfo:
    id: int
    name: str
    plan: PlanInfo
    cycle_anchor_day: int
    contribute: bool


@dataclass(frozen=True)
class MemberInfo:
    id: int
    team_id: int
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class CycleInfo:
    id: int
    team_id: int
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class CycleCloseResult:
    closed: list[CycleInfo]
    current: CycleInfo
    allotted_credits: int
    refunded_credits: int


# ---- billing-cycle arithmetic ------------------------------------------------------------


def _anchored(year: int, month: int, anchor_day: int) -> datetime:
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _add_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def cycle_bounds(anchor_day: int, at: datetime) -> tuple[datetime, datetime]:
    """The monthly cycle [start, end) that contains `at`, anchored on `anchor_day` (clamped)."""
    at = as_utc(at)
    start = _anchored(at.year, at.month, anchor_day)
    if start > at:
        year, month = (at.year - 1, 12) if at.month == 1 else (at.year, at.month - 1)
        start = _anchored(year, month, anchor_day)
    return start, next_cycle_start(anchor_day, start)


def next_cycle_start(anchor_day: int, start: datetime) -> datetime:
    year, month = _add_month(start.year, start.month)
    return _anchored(year, month, anchor_day)


# ---- validation --------------------------------------------------------------------------


def _check_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(f"{what} name: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} name: longer than {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidInput(f"{what} name {name!r}: must not contain newlines, tabs or other control characters")
    return name


def _check_team_name(name: str) -> str:
    """Team names are also team references: an all-digit name would read as an id (`#3` is id 3)."""
    name = _check_name(name, "team")
    if name.isdigit() or name.startswith(TEAM_ID_PREFIX):
        raise InvalidInput(
            f"team name {name!r}: must not be all digits or start with {TEAM_ID_PREFIX!r} "
            f"(those are team ids, e.g. {TEAM_ID_PREFIX}3)"
        )
    return name


def normalise_member_email(email: str) -> str:
    try:
        # test_environment: admits the reserved `.test` TLD the demo team uses (admin@demo.test).
        return validate_email(email, check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"member email {email!r}: {exc}") from None


def _check_credits(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what}: must be a whole number >= 0, got {value!r}")
    # The same ceiling as one grant: a plan's allotment is granted in one transfer each cycle.
    if value > MAX_AMOUNT_CREDITS:
        raise InvalidInput(f"{what}: {value} exceeds the limit of {MAX_AMOUNT_CREDITS:,} credits")
    return value


# ---- the service -------------------------------------------------------------------------


class Accounts:
    def __init__(self, engine: Engine, ledger: Ledger | None = None) -> None:
        self.engine = engine
        self.ledger = ledger or Ledger(engine)

    # plans

    def create_plan(
        self,
        name: str,
        *,
        monthly_credits: int,
        rollover: bool = False,
        price_email_credits: int = 1,
        price_mobile_credits: int = 8,
        price_export_credits: int = 0,
    ) -> PlanInfo:
        name = _check_name(name, "plan")
        values = dict(
            name=name,
            monthly_credits=_check_credits(monthly_credits, "monthly credits"),
            rollover=bool(rollover),
            price_email_credits=_check_credits(price_email_credits, "email price"),
            price_mobile_credits=_check_credits(price_mobile_credits, "mobile price"),
            price_export_credits=_check_credits(price_export_credits, "export price"),
            builtin=False,
            created_at=utcnow(),
        )

        def op(conn: Connection) -> int:
            if conn.execute(select(_PLAN.c.id).where(_PLAN.c.name == name)).first():
                raise AlreadyExists(f"plan {name!r} already exists")
            return conn.execute(insert(_PLAN).values(**values).returning(_PLAN.c.id)).scalar_one()

        return self.plan(run_write(self.engine, op))

    def plan(self, ref: int | str) -> PlanInfo:
        with read_transaction(self.engine) as conn:
            return _plan(conn, ref)

    def plans(self) -> list[PlanInfo]:
        with read_transaction(self.engine) as conn:
            return [_plan_info(r) for r in conn.execute(select(_PLAN).order_by(_PLAN.c.monthly_credits, _PLAN.c.id))]

    # teams

    def create_team(
        self,
        name: str,
        *,
        plan: str | int = "free",
        anchor_day: int | None = None,
        contribute: bool = True,
        now: datetime | None = None,
    ) -> TeamInfo:
        """Create a team with its ledger accounts, its first billing cycle and that cycle's credits."""
        name = _check_team_name(name)
        now = as_utc(now or utcnow())
        anchor_day = now.day if anchor_day is None else anchor_day
        if isinstance(anchor_day, bool) or not isinstance(anchor_day, int) or not 1 <= anchor_day <= 31:
            raise InvalidInput(f"cycle anchor day: must be between 1 and 31, got {anchor_day!r}")

        def op(conn: Connection) -> int:
            plan_info = _plan(conn, plan)
            if conn.execute(select(_TEAM.c.id).where(_TEAM.c.name == name)).first():
                raise AlreadyExists(f"team {name!r} already exists")
            team_id = conn.execute(
                insert(_TEAM)
                .values(
                    name=name, plan_id=plan_info.id, cycle_anchor_day=anchor_day, contribute=contribute, created_at=now
                )
                .returning(_TEAM.c.id)
            ).scalar_one()
            Ledger.open_accounts(conn, team_id)
            starts_at, ends_at = cycle_bounds(anchor_day, now)
            self._open_cycle(conn, team_id, plan_info, starts_at, ends_at, now)
            return team_id

        try:
            team_id = run_write(self.engine, op)
        except IntegrityError:
            raise AlreadyExists(f"team {name!r} already exists") from None
        return self.team(team_id)

    def team(self, ref: int | str) -> TeamInfo:
        with read_transaction(self.engine) as conn:
            return _team(conn, ref)

    def teams(self) -> list[TeamInfo]:
        with read_transaction(self.engine) as conn:
            ids = conn.execute(select(_TEAM.c.id).order_by(_TEAM.c.id)).scalars().all()
            return [_team(conn, team_id) for team_id in ids]

    def set_plan(self, team_ref: int | str, plan: int | str) -> TeamInfo:
        """Takes effect for the next cycle's allotment; this cycle's credits stay as granted."""

        def op(conn: Connection) -> int:
            team = _team(conn, team_ref)
            plan_info = _plan(conn, plan)
            conn.execute(update(_TEAM).where(_TEAM.c.id == team.id).values(plan_id=plan_info.id))
            return team.id

        return self.team(run_write(self.engine, op))

    def set_contribute(self, team_ref: int | str, contribute: bool) -> TeamInfo:
        def op(conn: Connection) -> int:
            team = _team(conn, team_ref)
            conn.execute(update(_TEAM).where(_TEAM.c.id == team.id).values(contribute=contribute))
            return team.id

        return self.team(run_write(self.engine, op))

    # members

    def add_member(self, team_ref: int | str, email: str, *, role: Role = Role.MEMBER) -> MemberInfo:
        email = normalise_member_email(email)
        role = Role(role)

        def op(conn: Connection) -> int:
            team = _team(conn, team_ref)
            if conn.execute(select(_MEMBER.c.id).where(_MEMBER.c.team_id == team.id, _MEMBER.c.email == email)).first():
                raise AlreadyExists(f"{email} is already a member of team {team.name!r}")
            return conn.execute(
                insert(_MEMBER)
                .values(team_id=team.id, email=email, role=role.value, created_at=utcnow())
                .returning(_MEMBER.c.id)
            ).scalar_one()

        try:
            member_id = run_write(self.engine, op)
        except IntegrityError:
            raise AlreadyExists(f"{email} is already a member") from None
        return self.member(member_id)

    def member(self, ref: int | str, team_ref: int | str | None = None) -> MemberInfo:
        with read_transaction(self.engine) as conn:
            return _member(conn, ref, team_ref)

    def members(self, team_ref: int | str) -> list[MemberInfo]:
        with read_transaction(self.engine) as conn:
            team = _team(conn, team_ref)
            rows = conn.execute(select(_MEMBER).where(_MEMBER.c.team_id == team.id).order_by(_MEMBER.c.id))
            return [_member_info(r) for r in rows]

    # billing cycles

    def current_cycle(self, team_ref: int | str) -> CycleInfo:
        with read_transaction(self.engine) as conn:
            team = _team(conn, team_ref)
            return _cycle_info(_open_cycle_row(conn, team.id))

    def cycles(self, team_ref: int | str) -> list[CycleInfo]:
        with read_transaction(self.engine) as conn:
            team = _team(conn, team_ref)
            rows = conn.execute(select(_CYCLE).where(_CYCLE.c.team_id == team.id).order_by(_CYCLE.c.starts_at))
            return [_cycle_info(r) for r in rows]

    def close_cycle(self, team_ref: int | str, now: datetime | None = None) -> CycleCloseResult:
        """Close every cycle of the team that has ended by `now` and open the next.

        Idempotent and safe to run concurrently: it works under the team's wallet lock and only
        acts on cycles whose end has passed and that are not closed yet."""
        now = as_utc(now or utcnow())
        team_id = self.team(team_ref).id

        def op(conn: Connection) -> CycleCloseResult:
            accounts = self.ledger.lock_and_sweep(conn, team_id, now)
            team = _team(conn, team_id)
            closed: list[CycleInfo] = []
            allotted = refunded = 0
            cycle = _open_cycle_row(conn, team_id)
            for _ in range(MAX_CATCH_UP_CYCLES):
                if as_utc(cycle.ends_at) > now:
                    break
                conn.execute(update(_CYCLE).where(_CYCLE.c.id == cycle.id).values(closed_at=now))
                closed.append(replace(_cycle_info(cycle), closed_at=now))
                starts_at = as_utc(cycle.ends_at)
                ends_at = next_cycle_start(team.cycle_anchor_day, starts_at)
                new_id, granted = self._open_cycle(conn, team_id, team.plan, starts_at, ends_at, now, accounts)
                allotted += granted
                expires_at = None if team.plan.rollover else ends_at
                refunds = self.ledger.grant_due_refunds(
                    conn, team_id, accounts, cycle_start=starts_at, expires_at=expires_at, now=now
                )
                refunded += sum(t.amount_credits for t in refunds)
                # Credits of the cycle just closed (and of any cycle skipped over) expire now.
                accounts = self.ledger.lock_and_sweep(conn, team_id, now)
                cycle = conn.execute(select(_CYCLE).where(_CYCLE.c.id == new_id)).one()
            return CycleCloseResult(closed, _cycle_info(cycle), allotted, refunded)

        return run_write(self.engine, op)

    def _open_cycle(
        self,
        conn: Connection,
        team_id: int,
        plan: PlanInfo,
        starts_at: datetime,
        ends_at: datetime,
        now: datetime,
        accounts: dict | None = None,
    ) -> tuple[int, int]:
        cycle_id = conn.execute(
            insert(_CYCLE).values(team_id=team_id, starts_at=starts_at, ends_at=ends_at).returning(_CYCLE.c.id)
        ).scalar_one()
        accounts = accounts or self.ledger.lock_and_sweep(conn, team_id, now)
        transfer = self.ledger.allot(
            conn,
            team_id,
            accounts,
            plan.monthly_credits,
            cycle_id=cycle_id,
            starts_at=starts_at,
            expires_at=None if plan.rollover else ends_at,
            now=now,
        )
        return cycle_id, transfer.amount_credits if transfer else 0


# ---- row helpers -------------------------------------------------------------------------


def _plan_info(row) -> PlanInfo:
    return PlanInfo(
        id=row.id,
        name=row.name,
        monthly_credits=row.monthly_credits,
        rollover=row.rollover,
        price_email_credits=row.price_email_credits,
        price_mobile_credits=row.price_mobile_credits,
        price_export_credits=row.price_export_credits,
        builtin=row.builtin,
    )


def _plan(conn: Connection, ref: int | str) -> PlanInfo:
    column = _PLAN.c.id if isinstance(ref, int) else _PLAN.c.name
    row = conn.execute(select(_PLAN).where(column == ref)).one_or_none()
    if row is None:
        names = ", ".join(conn.execute(select(_PLAN.c.name).order_by(_PLAN.c.id)).scalars())
        raise NotFound(f"unknown plan {ref!r} (plans: {names})")
    return _plan_info(row)


def _team_row(conn: Connection, ref: int | str):
    """`ref`: an id (int, or `#3`) or a name. A bare number is a name if a (legacy) team bears it, else an
    id; when it is both one team's name and another's id, it is refused rather than guessed."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput(f"team {ref!r}: expected a team name or #id")
    if isinstance(ref, int):
        return conn.execute(select(_TEAM).where(_TEAM.c.id == ref)).one_or_none()
    text = ref.strip()
    if text.startswith(TEAM_ID_PREFIX):
        digits = text[len(TEAM_ID_PREFIX) :]
        if not digits.isdigit() or len(digits) > 18:
            raise InvalidInput(f"team {ref!r}: an id is written {TEAM_ID_PREFIX} and digits, e.g. {TEAM_ID_PREFIX}3")
        return conn.execute(select(_TEAM).where(_TEAM.c.id == int(digits))).one_or_none()
    by_name = conn.execute(select(_TEAM).where(_TEAM.c.name == text)).one_or_none()
    if not (text.isdigit() and len(text) <= 18):
        return by_name
    by_id = conn.execute(select(_TEAM).where(_TEAM.c.id == int(text))).one_or_none()
    if by_name is not None and by_id is not None and by_name.id != by_id.id:
        raise InvalidInput(
            f"team {text!r} is ambiguous: it is the name of team {TEAM_ID_PREFIX}{by_name.id} and the id of team "
            f"{by_id.name!r}; write {TEAM_ID_PREFIX}{text} for the id, or the other team's name"
        )
    return by_name if by_name is not None else by_id


def _team(conn: Connection, ref: int | str) -> TeamInfo:
    row = _team_row(conn, ref)
    if row is None:
        raise NotFound(f"unknown team {ref!r}")
    return TeamInfo(
        id=row.id,
        name=row.name,
        plan=_plan(conn, row.plan_id),
        cycle_anchor_day=row.cycle_anchor_day,
        contribute=row.contribute,
    )


def _member_info(row) -> MemberInfo:
    return MemberInfo(id=row.id, team_id=row.team_id, email=row.email, role=Role(row.role))


def _member(conn: Connection, ref: int | str, team_ref: int | str | None) -> MemberInfo:
    stmt = select(_MEMBER)
    team = _team(conn, team_ref) if team_ref is not None else None
    if team is not None:
        stmt = stmt.where(_MEMBER.c.team_id == team.id)
    if isinstance(ref, int):
        stmt = stmt.where(_MEMBER.c.id == ref)
    else:
        stmt = stmt.where(func.lower(_MEMBER.c.email) == ref.strip().lower())
    rows = conn.execute(stmt).all()
    if not rows:
        where = f" in team {team.name!r}" if team is not None else ""
        raise NotFound(f"unknown member {ref!r}{where}")
    if len(rows) > 1:
        raise InvalidInput(f"member {ref!r} belongs to several teams: name the team")
    return _member_info(rows[0])


def _cycle_info(row) -> CycleInfo:
    return CycleInfo(
        id=row.id,
        team_id=row.team_id,
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        closed_at=as_utc(row.closed_at) if row.closed_at else None,
    )


def _open_cycle_row(conn: Connection, team_id: int):
    row = conn.execute(
        select(_CYCLE)
        .where(_CYCLE.c.team_id == team_id, _CYCLE.c.closed_at.is_(None))
        .order_by(_CYCLE.c.starts_at.desc())
        .limit(1)
    ).one_or_none()
    check(row is not None, f"team {team_id} has no open billing cycle")
    return row


__all__ = [
    "Accounts",
    "AlreadyExists",
    "CycleCloseResult",
    "CycleInfo",
    "MemberInfo",
    "PlanInfo",
    "TeamInfo",
    "cycle_bounds",
    "next_cycle_start",
]
