"""Data requests: accessing a person's email or mobile for credits, by the seed's rules.

- Net-new only: a (team, person, kind) that was charged once is returned free for ever, across
  Slack, Sheets, CSV and the API alike (one `data_request` row per team, person and kind).
- Email: charged only when the email found is verified or likely_to_engage; anything else comes
  back with its status, free. An email request also returns a valid office phone, free.
- Mobile: charged once when at least one mobile number is found, whatever its status.
- The price is held before the lookup, then posted or voided. Posting and recording what was
  bought happen in one transaction, so a crash can never leave a charge without its record.

A request runs in three steps: claim (row lock; take a hold; lease the request), lookup (no
transaction open, so slow sources never block other writers), settle (row lock; post or void;
record). A second caller for the same request waits for the first to settle; a caller whose lease
ran out finds its attempt superseded and settles nothing.

A source that keeps bookkeeping of its own (the waterfall's source-call log and write-back) can
hand those writes to the settle transaction (`SettleWrites`) instead of opening transactions of its
own: on SQLite's single writer every transaction per request counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, MemberInfo, TeamInfo
from core.deferred_writes import DeferredWrites
from core.errors import InvalidInput, TributaryError
from core.ledger import HoldNotPending, InsufficientCredits, Ledger, UsageMeta
from core.people import resolve_person_in
from core.sources.base import ContactSource, EmailFinding, PersonInfo, PhoneFinding
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import DataRequest, Phone, TeamContact
from storage.models.enums import (
    Category,
    DataKind,
    DataRequestStatus,
    EmailStatus,
    Feature,
    HoldStatus,
    PhoneKind,
    PhoneStatus,
)
from storage.timeutil import as_utc, utcnow

_DR = DataRequest.__table__
_TC = TeamContact.__table__
_PHONE = Phone.__table__

DEFAULT_HOLD_TIMEOUT_S = 600
DEFAULT_LEASE_S = 120
WAIT_POLL_S = 0.05
MAX_BATCH = 10_000

# Re-checks an email whose verification is older than the freshness window; returns the new finding.
Reverify = Callable[[EmailFinding], EmailFinding]
# The source a team's request of one kind goes to (its waterfall); unset = `source` for everyone.
SourceFor = Callable[[TeamInfo, DataKind], ContactSource]


class RequestInProgress(TributaryError):
    pass


@runtime_checkable
class SettleWrites(Protocol):
    """A source whose own writes (call log, write-back) may join the request's settle transaction."""

    def deferring(self) -> AbstractContextManager[DeferredWrites]:
        """Within the block, this thread's writes are kept in the yielded object instead of run."""
        ...


class BudgetExhausted(TributaryError):
    """A job's spend cap (its ledger hold) cannot pay for this request: nothing was charged or revealed."""


@dataclass(frozen=True)
class Budget:
    """How a job's requests pay, instead of each holding its own price before its lookup.

    - `hold_id` set: the job's ledger hold (its spend cap); requests post their price from it, so the
      job can never spend more than the hold.
    - `hold_id` None (`Budget.uncapped()`): no cap; a request that found something chargeable is
      charged from the wallet in its settle transaction. If the wallet cannot pay then, nothing is
      charged or revealed and the request stays retryable, exactly as when a cap is spent. This saves
      a hold and its void per request (most requests find nothing chargeable)."""

    hold_id: int | None

    @classmethod
    def uncapped(cls) -> Budget:
        return cls(None)


@dataclass(frozen=True)
class AccessResult:
    request_id: int
    person: PersonInfo
    kind: DataKind
    status: DataRequestStatus
    charged_credits: int  # what this call cost: 0 for a replay of an earlier access
    already_accessed: bool
    email: EmailFinding | None = None
    office_phone: PhoneFinding | None = None
    mobile_phones: list[PhoneFinding] = field(default_factory=list)


@dataclass(frozen=True)
class BatchItem:
    ref: str
    result: AccessResult | None
    error: str | None


@dataclass(frozen=True)
class _Claim:
    request_id: int
    attempt: int
    hold_id: int | None
    price: int
    replay: AccessResult | None = None


@dataclass(frozen=True)
class _Context:
    """Who asks about whom, how they pay, and when (None: the clock at each step)."""

    team: TeamInfo
    member: MemberInfo
    person: PersonInfo
    feature: Feature
    now: datetime | None
    budget: Budget | None

    def at(self) -> datetime:
        return self.now or utcnow()


@dataclass(frozen=True)
class _Found:
    email: EmailFinding | None
    office: PhoneFinding | None
    mobiles: list[PhoneFinding]
    deferred: DeferredWrites | None = None


def _price(team: TeamInfo, kind: DataKind) -> int:
    return team.plan.price_email_credits if kind == DataKind.EMAIL else team.plan.price_mobile_credits


class DataRequests:
    def __init__(
        self,
        engine: Engine,
        source: ContactSource,
        *,
        accounts: Accounts | None = None,
        reverify: Reverify | None = None,
        freshness_window: timedelta = timedelta(days=30),
        hold_timeout_s: int = DEFAULT_HOLD_TIMEOUT_S,
        lease_s: int = DEFAULT_LEASE_S,
        sources: SourceFor | None = None,
    ) -> None:
        assert hold_timeout_s > lease_s, "a hold must outlive the lease of the lookup it pays for"
        self.engine = engine
        self.source = source
        self.sources = sources
        self.accounts = accounts or Accounts(engine)
        self.ledger: Ledger = self.accounts.ledger
        self.reverify = reverify
        self.freshness_window = freshness_window
        self.hold_timeout_s = hold_timeout_s
        self.lease_s = lease_s

    # ---- public ----------------------------------------------------------------------------

    def access_email(
        self,
        team: int | str,
        member: int | str,
        person: int | str,
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
    ) -> AccessResult:
        return self.access(team, member, person, DataKind.EMAIL, feature=feature, now=now, budget=budget)

    def access_mobile(
        self,
        team: int | str,
        member: int | str,
        person: int | str,
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
    ) -> AccessResult:
        return self.access(team, member, person, DataKind.MOBILE, feature=feature, now=now, budget=budget)

    def access_many(
        self,
        team: int | str,
        member: int | str,
        people: Sequence[int | str],
        kind: DataKind,
        *,
        feature: Feature = Feature.CLI,
    ) -> list[BatchItem]:
        """Each item succeeds or fails on its own; one bad reference never spoils the batch."""
        if len(people) > MAX_BATCH:
            raise TributaryError(f"batch: {len(people)} people exceeds the limit of {MAX_BATCH}")
        items = []
        for ref in people:
            try:
                items.append(BatchItem(str(ref), self.access(team, member, ref, kind, feature=feature), None))
            except TributaryError as exc:
                items.append(BatchItem(str(ref), None, str(exc)))
        return items

    def access(
        self,
        team_ref: int | str | TeamInfo,
        member_ref: int | str | MemberInfo,
        person_ref: int | str | PersonInfo,
        kind: DataKind,
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
        source: ContactSource | None = None,
    ) -> AccessResult:
        """Team, member and person may be given already resolved (a job resolves them once, not per
        request); the price is then the one of the given team's plan. `source`: the one from
        `source_for`, pinned by a caller that makes many requests (a job's run)."""
        kind = DataKind(kind)
        ctx = self._context(team_ref, member_ref, person_ref, feature, now, budget)
        deadline = time.monotonic() + self.lease_s
        while True:
            claim = self._claim(
                ctx.team, ctx.member, ctx.person, kind, _price(ctx.team, kind), ctx.feature, ctx.at(), budget
            )
            if claim is not None:
                break
            if time.monotonic() > deadline:
                raise RequestInProgress(
                    f"another lookup of {ctx.person.full_name}'s {kind} is still running; try again"
                )
            time.sleep(WAIT_POLL_S)  # another caller owns this request: wait for it to settle
        if claim.replay is not None:
            return claim.replay
        pending: list[DeferredWrites] = []
        try:
            found = self._look_up(ctx, kind, source, pending)
        except BaseException:
            self._abandon([claim], pending)
            raise
        result = self._settle(ctx, [(kind, claim, found)])[0]
        if isinstance(result, TributaryError):
            raise result
        return result

    def access_kinds(
        self,
        team_ref: int | str | TeamInfo,
        member_ref: int | str | MemberInfo,
        person_ref: int | str | PersonInfo,
        kinds: Sequence[DataKind],
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
        sources: Mapping[DataKind, ContactSource] | None = None,
    ) -> dict[DataKind, AccessResult | TributaryError]:
        """`access` for several kinds of one person, each with the same rules and outcome as its own
        `access`, but claimed together in one transaction and settled together in one (a job's
        email + mobile). Each kind succeeds or fails on its own: a user error is returned in its place."""
        kinds = list(dict.fromkeys(DataKind(k) for k in kinds))
        ctx = self._context(team_ref, member_ref, person_ref, feature, now, budget)
        sources = sources or {}
        results: dict[DataKind, AccessResult | TributaryError] = {}
        claimed = self._claim_many(ctx, kinds)
        live: list[tuple[DataKind, _Claim]] = []
        busy: list[DataKind] = []
        for kind, claim in zip(kinds, claimed, strict=True):
            if claim is None:
                busy.append(kind)  # another caller is looking it up: wait for it on its own, below
            elif isinstance(claim, TributaryError):
                results[kind] = claim
            elif claim.replay is not None:
                results[kind] = claim.replay
            else:
                live.append((kind, claim))
        settling: list[tuple[DataKind, _Claim, _Found]] = []
        pending: list[DeferredWrites] = []
        try:
            for kind, claim in live:
                settling.append((kind, claim, self._look_up(ctx, kind, sources.get(kind), pending)))
        except BaseException:
            self._abandon([claim for _, claim in live], pending)
            raise
        if settling:
            for (kind, _, _), result in zip(settling, self._settle(ctx, settling), strict=True):
                results[kind] = result
        for kind in busy:
            try:
                results[kind] = self.access(
                    ctx.team,
                    ctx.member,
                    ctx.person,
                    kind,
                    feature=ctx.feature,
                    now=now,
                    budget=budget,
                    source=sources.get(kind),
                )
            except TributaryError as exc:
                results[kind] = exc
        return {kind: results[kind] for kind in kinds}

    def source_for(self, team: TeamInfo, kind: DataKind) -> ContactSource:
        """Where a request of this team and kind is looked up now (its waterfall)."""
        return self.sources(team, kind) if self.sources is not None else self.source

    def _context(
        self,
        team_ref: int | str | TeamInfo,
        member_ref: int | str | MemberInfo,
        person_ref: int | str | PersonInfo,
        feature: Feature,
        now: datetime | None,
        budget: Budget | None,
    ) -> _Context:
        team = team_ref if isinstance(team_ref, TeamInfo) else self.accounts.team(team_ref)
        if isinstance(member_ref, MemberInfo):
            if member_ref.team_id != team.id:
                raise InvalidInput(f"member {member_ref.email} is not in team {team.name}")
            member = member_ref
        else:
            member = self.accounts.member(member_ref if not str(member_ref).isdigit() else int(member_ref), team.id)
        if isinstance(person_ref, PersonInfo):
            person = person_ref
        else:
            with read_transaction(self.engine) as conn:
                person = resolve_person_in(conn, person_ref)
        return _Context(team, member, person, Feature(feature), as_utc(now) if now else None, budget)

    # ---- step 1: claim ---------------------------------------------------------------------

    def _claim(
        self,
        team: TeamInfo,
        member: MemberInfo,
        person: PersonInfo,
        kind: DataKind,
        price: int,
        feature: Feature,
        now: datetime,
        budget: Budget | None = None,
    ) -> _Claim | None:
        ctx = _Context(team, member, person, feature, now, budget)
        result = self._claim_many(ctx, [kind], {kind: price})[0]
        if isinstance(result, TributaryError):
            raise result
        return result

    def _claim_many(
        self, ctx: _Context, kinds: Sequence[DataKind], prices: Mapping[DataKind, int] | None = None
    ) -> list[_Claim | None | TributaryError]:
        """One transaction: every request row locked first (in the order given), then each claimed."""

        def op(conn: Connection) -> list[_Claim | None | TributaryError]:
            now = ctx.at()
            rows = [
                self._lock_request(conn, ctx.team.id, ctx.person.id, kind, ctx.member, ctx.feature, now)
                for kind in kinds
            ]
            return [
                self._claim_in(conn, ctx, kind, row, now, prices[kind] if prices else _price(ctx.team, kind))
                for kind, row in zip(kinds, rows, strict=True)
            ]

        return run_write(self.engine, op)

    def _claim_in(
        self, conn: Connection, ctx: _Context, kind: DataKind, row, now: datetime, price: int
    ) -> _Claim | None | TributaryError:
        team, member, person, feature, budget = ctx.team, ctx.member, ctx.person, ctx.feature, ctx.budget
        if row.status == DataRequestStatus.CHARGED.value:
            self._save_contact(conn, team.id, person.id, member.id, now)
            return _Claim(row.id, row.attempts, None, 0, replay=self._result_from_row(conn, row, person))
        if row.status == DataRequestStatus.IN_PROGRESS.value and row.lease_until and as_utc(row.lease_until) > now:
            return None
        attempt = row.attempts + 1
        if row.hold_id is not None:
            # A previous attempt died mid-lookup: give its credits back before holding again.
            try:
                self.ledger.void(team.id, row.hold_id, key=f"dr:{row.id}:{attempt}:void-stale", now=now, conn=conn)
            except HoldNotPending:
                pass
        hold_id = None
        if budget is not None and budget.hold_id is None:
            pass  # charged from the wallet at settle, if found (see Budget)
        elif budget is not None and price > 0:
            # Checked again, authoritatively, when the price is posted from the budget.
            job_hold = self.ledger.hold_in(conn, budget.hold_id)
            if job_hold.status != HoldStatus.PENDING or job_hold.remaining_credits < price:
                return BudgetExhausted(
                    f"spend cap reached: {price} credits needed, {job_hold.remaining_credits} left in the cap"
                )
        elif price > 0:
            try:
                hold = self.ledger.hold(
                    team.id,
                    price,
                    key=f"dr:{row.id}:{attempt}:hold",
                    timeout_s=self.hold_timeout_s,
                    meta=self._meta(kind, feature, member, person),
                    now=now,
                    conn=conn,
                )
            except InsufficientCredits as exc:
                # Keep the record of the refused attempt; nothing else changes.
                conn.execute(update(_DR).where(_DR.c.id == row.id).values(attempts=attempt, hold_id=None))
                return exc
            hold_id = hold.id
        conn.execute(
            update(_DR)
            .where(_DR.c.id == row.id)
            .values(
                status=DataRequestStatus.IN_PROGRESS.value,
                attempts=attempt,
                hold_id=hold_id,
                lease_until=now + timedelta(seconds=self.lease_s),
                member_id=member.id,
                feature=feature.value,
            )
        )
        return _Claim(row.id, attempt, hold_id, price)

    def _lock_request(
        self,
        conn: Connection,
        team_id: int,
        person_id: int,
        kind: DataKind,
        member: MemberInfo,
        feature: Feature,
        now: datetime,
    ):
        values = dict(
            team_id=team_id,
            person_id=person_id,
            kind=kind.value,
            status=DataRequestStatus.NOT_FOUND.value,
            attempts=0,
            member_id=member.id,
            feature=feature.value,
            credits_charged=0,
            mobile_phones=[],
            created_at=now,
        )
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
        conn.execute(
            insert(_DR).values(**values).on_conflict_do_nothing(index_elements=["team_id", "person_id", "kind"])
        )
        return conn.execute(
            select(_DR)
            .where(_DR.c.team_id == team_id, _DR.c.person_id == person_id, _DR.c.kind == kind.value)
            .with_for_update()
        ).one()

    # ---- step 2: lookup --------------------------------------------------------------------

    def _look_up(
        self, ctx: _Context, kind: DataKind, source: ContactSource | None, pending: list[DeferredWrites]
    ) -> _Found:
        """The lookup, no transaction open. A source's own writes are kept for the settle (and put in
        `pending` first, so that a failed lookup's abandon still writes them)."""
        source = source if source is not None else self.source_for(ctx.team, kind)
        if not isinstance(source, SettleWrites):
            return _Found(*self._lookup(ctx.person, kind, ctx.at(), source))
        with source.deferring() as deferred:
            pending.append(deferred)
            return _Found(*self._lookup(ctx.person, kind, ctx.at(), source), deferred=deferred)

    def _lookup(
        self, person: PersonInfo, kind: DataKind, now: datetime, source: ContactSource
    ) -> tuple[EmailFinding | None, PhoneFinding | None, list[PhoneFinding]]:
        phones = source.find_phones(person)
        if kind == DataKind.MOBILE:
            return None, None, [p for p in phones if p.kind == PhoneKind.MOBILE]
        email = source.find_email(person)
        if email is not None and email.chargeable and self._stale(email, now):
            # A stale "verified" is not worth money: check again before charging for it.
            email = self.reverify(email) if self.reverify else email
        office = next((p for p in phones if p.kind == PhoneKind.OFFICE and p.status == PhoneStatus.VALID), None)
        return email, office, []

    def _stale(self, email: EmailFinding, now: datetime) -> bool:
        return email.checked_at is None or now - email.checked_at > self.freshness_window

    # ---- step 3: settle --------------------------------------------------------------------

    def _settle(
        self, ctx: _Context, items: Sequence[tuple[DataKind, _Claim, _Found]]
    ) -> list[AccessResult | TributaryError]:
        """One transaction: every request row locked first (in the order given), then each settled."""

        def op(conn: Connection) -> list[AccessResult | TributaryError]:
            now = ctx.at()
            rows = [
                conn.execute(select(_DR).where(_DR.c.id == claim.request_id).with_for_update()).one()
                for _, claim, _ in items
            ]
            return [
                self._settle_in(conn, ctx, kind, claim, found, row, now)
                for (kind, claim, found), row in zip(items, rows, strict=True)
            ]

        return run_write(self.engine, op)

    def _settle_in(
        self, conn: Connection, ctx: _Context, kind: DataKind, claim: _Claim, found: _Found, row, now: datetime
    ) -> AccessResult | TributaryError:
        team, member, person, feature, budget = ctx.team, ctx.member, ctx.person, ctx.feature, ctx.budget
        email, office, mobiles = found.email, found.office, found.mobiles
        if kind == DataKind.EMAIL:
            chargeable = email is not None and email.chargeable
            is_found = email is not None
        else:
            chargeable = is_found = bool(mobiles)
        status = (
            DataRequestStatus.CHARGED
            if chargeable
            else DataRequestStatus.FREE
            if is_found
            else DataRequestStatus.NOT_FOUND
        )
        if found.deferred is not None:
            found.deferred.write(conn)  # the calls were made whatever happens below: keep their log
        if row.attempts != claim.attempt or row.status != DataRequestStatus.IN_PROGRESS.value:
            # Our lease ran out and a newer attempt took over (and voided our hold).
            return RequestInProgress(f"the lookup of {person.full_name}'s {kind} took too long; try again")

        def refuse(error: TributaryError) -> TributaryError:
            # Nothing can pay: reveal nothing, charge nothing, leave the request retryable.
            conn.execute(
                update(_DR)
                .where(_DR.c.id == row.id)
                .values(status=DataRequestStatus.NOT_FOUND.value, lease_until=None, hold_id=None)
            )
            return error

        charged = 0
        transfer_id = None
        if budget is not None and budget.hold_id is None and chargeable and claim.price > 0:
            try:
                transfer = self.ledger.charge(
                    team.id,
                    claim.price,
                    key=f"dr:{row.id}:{claim.attempt}:charge",
                    meta=self._meta(kind, feature, member, person),
                    now=now,
                    conn=conn,
                )
            except InsufficientCredits as exc:
                return refuse(exc)
            charged, transfer_id = transfer.amount_credits, transfer.id
        elif budget is not None and chargeable and claim.price > 0:
            try:
                transfer = self.ledger.post(
                    team.id,
                    budget.hold_id,
                    claim.price,
                    key=f"dr:{row.id}:{claim.attempt}:post",
                    close=False,
                    meta=self._meta(kind, feature, member, person),
                    now=now,
                    conn=conn,
                )
            except (InvalidInput, HoldNotPending) as exc:
                return refuse(BudgetExhausted(f"spend cap reached: {exc}"))
            charged, transfer_id = transfer.amount_credits, transfer.id
        elif claim.hold_id is not None:
            if chargeable:
                transfer = self.ledger.post(
                    team.id, claim.hold_id, key=f"dr:{row.id}:{claim.attempt}:post", now=now, conn=conn
                )
                charged, transfer_id = transfer.amount_credits, transfer.id
            else:
                self.ledger.void(team.id, claim.hold_id, key=f"dr:{row.id}:{claim.attempt}:void", now=now, conn=conn)
        conn.execute(
            update(_DR)
            .where(_DR.c.id == row.id)
            .values(
                status=status.value,
                lease_until=None,
                hold_id=None,
                credits_charged=charged,
                charge_transfer_id=transfer_id,
                member_id=member.id,
                feature=feature.value,
                email_address=email.address if email else None,
                email_status=email.status.value if email else None,
                office_phone=office.e164 if office else None,
                mobile_phones=[p.e164 for p in mobiles],
                settled_at=now,
            )
        )
        self._save_contact(conn, team.id, person.id, member.id, now)
        return AccessResult(
            request_id=row.id,
            person=person,
            kind=kind,
            status=status,
            charged_credits=charged,
            already_accessed=False,
            email=email,
            office_phone=office,
            mobile_phones=mobiles,
        )

    def _abandon(self, claims: Sequence[_Claim], pending: Sequence[DeferredWrites] = ()) -> None:
        """The lookup failed: give the credits back at once and free the requests."""

        def op(conn: Connection) -> None:
            rows = [
                conn.execute(select(_DR).where(_DR.c.id == claim.request_id).with_for_update()).one()
                for claim in claims
            ]
            for deferred in pending:
                deferred.write(conn)
            for claim, row in zip(claims, rows, strict=True):
                if row.attempts != claim.attempt or row.status != DataRequestStatus.IN_PROGRESS.value:
                    continue
                if claim.hold_id is not None:
                    self.ledger.void(row.team_id, claim.hold_id, key=f"dr:{row.id}:{claim.attempt}:abandon", conn=conn)
                conn.execute(
                    update(_DR)
                    .where(_DR.c.id == row.id)
                    .values(status=DataRequestStatus.NOT_FOUND.value, lease_until=None, hold_id=None)
                )

        run_write(self.engine, op)

    # ---- helpers ---------------------------------------------------------------------------

    def _save_contact(self, conn: Connection, team_id: int, person_id: int, member_id: int, now: datetime) -> None:
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
        conn.execute(
            insert(_TC)
            .values(team_id=team_id, person_id=person_id, created_by_member_id=member_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["team_id", "person_id"])
        )

    @staticmethod
    def _meta(kind: DataKind, feature: Feature, member: MemberInfo, person: PersonInfo) -> UsageMeta:
        what = f"{person.full_name}" + (f" ({person.company})" if person.company else "")
        return UsageMeta(
            category=Category.EMAIL if kind == DataKind.EMAIL else Category.MOBILE,
            feature=feature,
            member_id=member.id,
            action=f"access_{kind.value}",
            description=f"Accessed {kind.value} of {what}"[:500],
            data_requested=f"person:{person.id} {kind.value}",
        )

    def _result_from_row(self, conn: Connection, row, person: PersonInfo) -> AccessResult:
        phones = {p.e164: p for p in conn.execute(select(_PHONE).where(_PHONE.c.person_id == person.id)).all()}

        def phone(e164: str) -> PhoneFinding:
            p = phones.get(e164)
            return PhoneFinding(
                e164=e164,
                kind=PhoneKind(p.kind) if p else PhoneKind.MOBILE,
                status=PhoneStatus(p.status) if p else PhoneStatus.UNKNOWN,
                line_type=p.line_type if p else None,
                source="record",
            )

        email = None
        if row.email_address:
            email = EmailFinding(row.email_address, EmailStatus(row.email_status), 0, None, "record")
        return AccessResult(
            request_id=row.id,
            person=person,
            kind=DataKind(row.kind),
            status=DataRequestStatus(row.status),
            charged_credits=0,
            already_accessed=True,
            email=email,
            office_phone=phone(row.office_phone) if row.office_phone else None,
            mobile_phones=[phone(e) for e in row.mobile_phones or []],
        )
