"""Data requests: accessing a person's email or mobile for credits, by the seed's rules.

- Net-new only: a (team, person, kind) that was charged once is returned free for ever, across
  Slack, Sheets, CSV and the API alike (one `data_request` row per team, person and kind).
- Email: charged only when the email found is verified or likely_to_engage; anything else comes
  back with its status, free. An email request also returns a valid office phone, free.
- Mobile: charged once when at least one mobile number is found, whatever its status.
- The price is held before the lookup, then posted or voided (or paid from a job's budget: see
  core.data_requests.budget). Posting and recording what was bought happen in one transaction, so
  a crash can never leave a charge without its record.

A request runs in three steps: claim (row lock; its payer takes a hold or checks the budget; lease
the request), lookup (no transaction open, so slow sources never block other writers), settle (row
lock; its payer pays or releases; record). A second caller for the same request waits for the first
to settle; a caller whose lease ran out finds its attempt superseded and settles nothing.

A source that keeps bookkeeping of its own (the waterfall's source-call log and write-back) can
hand those writes to the settle transaction (`SettleWrites`) instead of opening transactions of its
own: on SQLite's single writer every transaction per request counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, select, update

from core.accounts import Accounts, MemberInfo, TeamInfo
from core.data_requests.budget import NOTHING, Budget, Payer, Payment, PriceDue, Settling, payer_for
from core.data_requests.costs import RequestCost, request_cost
from core.data_requests.recheck import Reverify, is_stale
from core.data_requests.shortcuts import Shortcuts
from core.errors import InvalidInput, NotFound, TributaryError, check
from core.ledger import HoldNotPending, InsufficientCredits, Ledger, UsageMeta
from core.people.company_accounts import save_accounts_of
from core.people.resolve import resolve_people_in, resolve_person_in
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from core.sources.base import ContactSource
from core.sources.lookup_scope import one_lookup
from storage.bulk_rows import BulkInsert, BulkUpdate
from storage.db import read_transaction, run_write
from storage.deferred_writes import DeferredWrites, write_all
from storage.limits import MAX_TEXT_CHARS
from storage.models import DataRequest, Phone, TeamContact
from storage.models.enums import (
    Category,
    DataKind,
    DataRequestStatus,
    EmailStatus,
    Feature,
    PhoneKind,
    PhoneStatus,
)
from storage.sql_lists import one_of
from storage.timeutil import as_utc, utcnow

_DR = DataRequest.__table__
_TC = TeamContact.__table__
_PHONE = Phone.__table__

DEFAULT_HOLD_TIMEOUT_S = 600
DEFAULT_LEASE_S = 120
WAIT_POLL_S = 0.05
MAX_PEOPLE_PER_CALL = 1_000  # access_people: what one claim and one settle transaction may lock

# The source a team's request of one kind goes to (its waterfall); unset = `source` for everyone.
SourceFor = Callable[[TeamInfo, DataKind], ContactSource]


class RequestInProgress(TributaryError):
    http_status = 409


@runtime_checkable
class SettleWrites(Protocol):
    """A source whose own writes (call log, write-back) may join the request's settle transaction."""

    def deferring(self) -> AbstractContextManager[DeferredWrites]:
        """Within the block, this thread's writes are kept in the yielded object instead of run."""
        ...


_DEFERS_WRITES: dict[type, bool] = {}


def _defers_writes(source: ContactSource) -> bool:
    """`isinstance(source, SettleWrites)`, decided once per class: a runtime protocol check walks the
    protocol's members on every call (about 1 % of an enrichment worker's CPU, once per lookup)."""
    kind = type(source)
    known = _DEFERS_WRITES.get(kind)
    if known is None:
        known = _DEFERS_WRITES[kind] = isinstance(source, SettleWrites)
    return known


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


# A settled request's row, and a claimed one's: many requests' rows in one statement each.
_SETTLE_REQUEST = BulkUpdate(
    _DR,
    match=["id"],
    columns=[
        "status", "credits_charged", "charge_transfer_id", "member_id", "feature",
        "email_address", "email_status", "office_phone", "mobile_phones", "settled_at",
    ],
    fixed=dict(lease_until=None, hold_id=None),
)
_CLAIM_REQUEST = BulkUpdate(
    _DR,
    match=["id"],
    columns=["attempts", "hold_id", "lease_until", "member_id", "feature"],
    fixed=dict(status=DataRequestStatus.IN_PROGRESS.value),
)
_INSERT_REQUESTS = BulkInsert(
    _DR,
    columns=[
        "team_id", "person_id", "kind", "status", "attempts", "member_id", "feature",
        "credits_charged", "mobile_phones", "created_at",
    ],
    skip_conflicts_on=["team_id", "person_id", "kind"],
)
_INSERT_CONTACTS = BulkInsert(
    _TC,
    columns=["team_id", "person_id", "created_by_member_id", "owner_member_id", "source", "created_at"],
    skip_conflicts_on=["team_id", "person_id"],
)


def _contact_row(ctx: _Context, now: datetime) -> dict:
    # The member who accessed owns the contact; a contact saved before keeps its owner (insert-or-ignore).
    return dict(
        team_id=ctx.team.id,
        person_id=ctx.person.id,
        created_by_member_id=ctx.member.id,
        owner_member_id=ctx.member.id,
        source=ctx.feature.value,
        created_at=now,
    )


def _status_of(kind: DataKind, found: _Found) -> tuple[DataRequestStatus, bool]:
    """A settled request's status, and whether it is chargeable (what it found is worth its price)."""
    if kind == DataKind.EMAIL:
        chargeable = found.email is not None and found.email.chargeable
        is_found = found.email is not None
    else:
        chargeable = is_found = bool(found.mobiles)
    status = (
        DataRequestStatus.CHARGED if chargeable else DataRequestStatus.FREE if is_found else DataRequestStatus.NOT_FOUND
    )
    return status, chargeable


@dataclass(frozen=True, slots=True)
class _ToSettle:
    """A request of a settle transaction whose claim still holds: what it found, as of when."""

    i: int  # its person's index in the transaction
    kind: DataKind
    claim: _Claim
    found: _Found
    now: datetime
    status: DataRequestStatus
    chargeable: bool


def _superseded(ctx: _Context, kind: DataKind, claim: _Claim, row) -> RequestInProgress | None:
    """Our lease ran out and a newer attempt took the request over (and voided our hold)."""
    if row.attempts != claim.attempt or row.status != DataRequestStatus.IN_PROGRESS.value:
        return RequestInProgress(f"the lookup of {ctx.person.full_name}'s {kind} took too long; try again")
    return None


# One person's answer in access_people: {kind: result or user error}, or what its lookup raised.
_Answer = dict[DataKind, AccessResult | TributaryError] | BaseException
# One person's lookups: (kind, claim, found) for each done, the writes deferred to settle, what raised.
_Looked = tuple[list[tuple[DataKind, _Claim, _Found]], list[DeferredWrites], BaseException | None]


def _check_people_call(
    team: TeamInfo, member: MemberInfo, people: Sequence[int | PersonInfo], kinds: Sequence[DataKind]
) -> list[DataKind]:
    """Refuse a call access_people cannot serve; returns its kinds, each once, in order."""
    if len(people) > MAX_PEOPLE_PER_CALL:
        raise InvalidInput(f"people: {len(people)} in one call exceeds the limit of {MAX_PEOPLE_PER_CALL}")
    if member.team_id != team.id:
        raise InvalidInput(f"member {member.email} is not in team {team.name}")
    refs = [p.id if isinstance(p, PersonInfo) else int(p) for p in people]
    if len(set(refs)) != len(refs):
        raise InvalidInput("people: a person is named twice in one call")
    return list(dict.fromkeys(DataKind(k) for k in kinds))


def _sort_claims(
    claimed: Mapping[tuple[int, DataKind], _Claim | None | TributaryError], answers: list[_Answer]
) -> tuple[dict[int, list[tuple[DataKind, _Claim]]], list[tuple[int, DataKind]]]:
    """Answer what the claim step already decided (refusals, replays); returns the claims to look up
    by person, and the requests another caller is looking up (waited for one by one afterwards)."""
    live: dict[int, list[tuple[DataKind, _Claim]]] = {}
    busy: list[tuple[int, DataKind]] = []
    for (i, kind), claim in claimed.items():
        answer = answers[i]
        check(not isinstance(answer, BaseException), "only people found are claimed")
        if claim is None:
            busy.append((i, kind))
        elif isinstance(claim, TributaryError):
            answer[kind] = claim
        elif claim.replay is not None:
            answer[kind] = claim.replay
        else:
            live.setdefault(i, []).append((kind, claim))
    return live, busy


def _price(team: TeamInfo, kind: DataKind) -> int:
    return team.plan.price_email_credits if kind == DataKind.EMAIL else team.plan.price_mobile_credits


class DataRequests(Shortcuts):
    """The data-request service. Front ends call `access` (one person, one kind: the bot, the CLI);
    jobs call `access_people` (a batch of people, their kinds claimed and settled together). The
    shortcuts of `Shortcuts` wrap these two."""

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
        check(hold_timeout_s > lease_s, "a hold must outlive the lease of the lookup it pays for")
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
        settled = self._settle_people({0: ctx}, {0: ([(kind, claim, found)], pending, None)}, {0: [(kind, claim)]})
        outcome = settled[0]
        check(not isinstance(outcome, BaseException), "a lookup that did not raise is settled")
        result = outcome[kind]
        if isinstance(result, TributaryError):
            raise result
        return result

    def access_people(
        self,
        team: TeamInfo,
        member: MemberInfo,
        people: Sequence[int | PersonInfo],
        kinds: Sequence[DataKind],
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
        sources: Mapping[DataKind, ContactSource] | None = None,
        executor: Executor | None = None,
    ) -> list[dict[DataKind, AccessResult | TributaryError] | BaseException]:
        """`access_kinds` for many people at once (a job's batch): every request of every person is
        claimed in ONE transaction and settled in ONE, with the lookups in between run on `executor`
        (inline when None). Each request keeps its own rules, lease and outcome; per person the answer
        is {kind: result or user error}, or the exception its lookup raised (its claims abandoned).
        A person id that names nobody answers NotFound for every kind."""
        kinds = _check_people_call(team, member, people, kinds)
        sources = sources or {}
        feature = Feature(feature)
        when = as_utc(now) if now else None
        answers, ctxs = self._people_contexts(team, member, people, kinds, feature, when, budget)
        claimed = self._claim_people(ctxs, kinds) if ctxs and kinds else {}
        live, busy = _sort_claims(claimed, answers)
        looked = self._look_up_people(ctxs, live, sources, executor)
        if looked:
            for i, outcome in self._settle_people(ctxs, looked, live).items():
                if isinstance(outcome, BaseException):
                    answers[i] = outcome
                else:
                    answers[i].update(outcome)
        for i, kind in busy:
            self._access_busy(answers, i, ctxs[i], kind, sources.get(kind), now)
        return [a if isinstance(a, BaseException) else {kind: a[kind] for kind in kinds} for a in answers]

    def _people_contexts(
        self,
        team: TeamInfo,
        member: MemberInfo,
        people: Sequence[int | PersonInfo],
        kinds: Sequence[DataKind],
        feature: Feature,
        when: datetime | None,
        budget: Budget | None,
    ) -> tuple[list[_Answer], dict[int, _Context]]:
        """Each person's (empty) answer and context by position in `people`; nobody found answers NotFound."""
        answers: list[_Answer] = [{} for _ in people]
        ctxs: dict[int, _Context] = {}  # by position in `people`
        for i, person in enumerate(self._persons(people)):
            if isinstance(person, TributaryError):
                answers[i] = {kind: person for kind in kinds}
            else:
                ctxs[i] = _Context(team, member, person, feature, when, budget)
        return answers, ctxs

    def _look_up_people(
        self,
        ctxs: Mapping[int, _Context],
        live: Mapping[int, list[tuple[DataKind, _Claim]]],
        sources: Mapping[DataKind, ContactSource],
        executor: Executor | None,
    ) -> dict[int, _Looked]:
        """Every claimed person's lookups, on `executor` (inline for one person or without one); no
        transaction is open. A lookup that raises ends its person's lookups and is returned with them."""

        def look_up(i: int) -> _Looked:
            found: list[tuple[DataKind, _Claim, _Found]] = []
            pending: list[DeferredWrites] = []
            try:
                with one_lookup():  # the person's requests share what the sources answered (one moment)
                    for kind, claim in live[i]:
                        found.append((kind, claim, self._look_up(ctxs[i], kind, sources.get(kind), pending)))
            except BaseException as exc:  # noqa: BLE001 - abandoned by the settle step, handed to the caller
                return found, pending, exc
            return found, pending, None

        if executor is None or len(live) <= 1:
            return {i: look_up(i) for i in live}
        futures = {i: executor.submit(look_up, i) for i in live}
        return {i: future.result() for i, future in futures.items()}

    def _access_busy(
        self,
        answers: list[_Answer],
        i: int,
        ctx: _Context,
        kind: DataKind,
        source: ContactSource | None,
        now: datetime | None,
    ) -> None:
        """A request another caller was looking up: wait for it on its own (`access`) into answers[i]."""
        answer = answers[i]
        if isinstance(answer, BaseException):
            return
        try:
            answer[kind] = self.access(
                ctx.team,
                ctx.member,
                ctx.person,
                kind,
                feature=ctx.feature,
                now=now,
                budget=ctx.budget,
                source=source,
            )
        except TributaryError as exc:
            answer[kind] = exc
        except BaseException as exc:  # noqa: BLE001 - this person's answer, as for a failed lookup
            answers[i] = exc

    def cost_of(
        self, request_id: int, *, member_id: int, feature: Feature, settled_since: datetime
    ) -> RequestCost | None:
        """What a request cost, if it was settled for this member and front end since then (see
        core.data_requests.costs)."""
        return request_cost(
            self.engine, self.ledger, request_id, member_id=member_id, feature=feature, settled_since=settled_since
        )

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

    def _persons(self, people: Sequence[int | PersonInfo]) -> list[PersonInfo | TributaryError]:
        ids = [p for p in people if not isinstance(p, PersonInfo)]
        found: dict[int, PersonInfo] = {}
        if ids:
            with read_transaction(self.engine) as conn:
                found = resolve_people_in(conn, ids)
        return [
            p if isinstance(p, PersonInfo) else found.get(int(p)) or NotFound(f"no person matches {str(p)!r}")
            for p in people
        ]

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
        check(price == _price(team, kind), "a request is claimed at its team's plan price")
        ctx = _Context(team, member, person, feature, now, budget)
        result = self._claim_people({0: ctx}, [kind])[(0, kind)]
        if isinstance(result, TributaryError):
            raise result
        return result

    def _claim_people(
        self, ctxs: Mapping[int, _Context], kinds: Sequence[DataKind]
    ) -> dict[tuple[int, DataKind], _Claim | None | TributaryError]:
        """One transaction for many people: the request rows made and locked together (in person
        and kind order, the order every caller locks them in), then each claimed."""
        first = next(iter(ctxs.values()))
        team, member, feature = first.team, first.member, first.feature
        by_person = {ctx.person.id: i for i, ctx in ctxs.items()}

        def op(conn: Connection) -> dict[tuple[int, DataKind], _Claim | None | TributaryError]:
            now = first.at()
            rows = self._lock_requests(conn, team.id, sorted(by_person), kinds, member, feature, now)
            claims: list[dict] = []
            out = {
                (by_person[row.person_id], DataKind(row.kind)): self._claim_in(
                    conn,
                    ctxs[by_person[row.person_id]],
                    DataKind(row.kind),
                    row,
                    now,
                    _price(team, DataKind(row.kind)),
                    claims,
                )
                for row in rows
            }
            _CLAIM_REQUEST.run(conn, claims)  # every claimed row in one statement
            return out

        return run_write(self.engine, op)

    def _claim_in(
        self, conn: Connection, ctx: _Context, kind: DataKind, row, now: datetime, price: int, claims: list[dict]
    ) -> _Claim | None | TributaryError:
        """Claim one request in `conn`; its row's update is appended to `claims` (run by the caller)."""
        team, member, person, feature, budget = ctx.team, ctx.member, ctx.person, ctx.feature, ctx.budget
        if row.status == DataRequestStatus.CHARGED.value:
            _INSERT_CONTACTS.run(conn, [_contact_row(ctx, now)])
            save_accounts_of(conn, [person.id], now, [team.id])
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
        due = self._due(ctx, kind, row.id, attempt, price, now)
        hold_id = self._payer(budget).claim(self.ledger, conn, due)
        if isinstance(hold_id, InsufficientCredits):
            # The wallet refused the request's own hold: keep the record of the refused attempt.
            conn.execute(update(_DR).where(_DR.c.id == row.id).values(attempts=attempt, hold_id=None))
            return hold_id
        if isinstance(hold_id, TributaryError):
            return hold_id
        claims.append(
            dict(
                id=row.id,
                attempts=attempt,
                hold_id=hold_id,
                lease_until=now + timedelta(seconds=self.lease_s),
                member_id=member.id,
                feature=feature.value,
            )
        )
        return _Claim(row.id, attempt, hold_id, price)

    def _lock_requests(
        self,
        conn: Connection,
        team_id: int,
        person_ids: Sequence[int],
        kinds: Sequence[DataKind],
        member: MemberInfo,
        feature: Feature,
        now: datetime,
    ) -> list:
        """Make the missing request rows (one insert) and lock every (person, kind) row (one read)."""
        _INSERT_REQUESTS.run(
            conn,
            [
                dict(
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
                for person_id in person_ids
                for kind in kinds
            ],
        )
        rows = conn.execute(
            select(_DR)
            .where(
                _DR.c.team_id == team_id,
                one_of(conn, _DR.c.person_id, person_ids),
                _DR.c.kind.in_([k.value for k in kinds]),
            )
            .order_by(_DR.c.person_id, _DR.c.kind)
            .with_for_update()
        ).all()
        check(len(rows) == len(person_ids) * len(kinds), "every (person, kind) has its request row")
        return rows

    # ---- step 2: lookup --------------------------------------------------------------------

    def _look_up(
        self, ctx: _Context, kind: DataKind, source: ContactSource | None, pending: list[DeferredWrites]
    ) -> _Found:
        """The lookup, no transaction open. A source's own writes are kept for the settle (and put in
        `pending` first, so that a failed lookup's abandon still writes them)."""
        source = source if source is not None else self.source_for(ctx.team, kind)
        if not _defers_writes(source):
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
        if email is not None and email.chargeable and is_stale(email, now, self.freshness_window):
            # A stale "verified" is not worth money: check again before charging for it.
            email = self.reverify(email) if self.reverify else email
        office = next((p for p in phones if p.kind == PhoneKind.OFFICE and p.status == PhoneStatus.VALID), None)
        return email, office, []

    # ---- step 3: settle --------------------------------------------------------------------

    def _settle_people(
        self,
        ctxs: Mapping[int, _Context],
        looked: Mapping[int, tuple[list[tuple[DataKind, _Claim, _Found]], list[DeferredWrites], BaseException | None]],
        live: Mapping[int, list[tuple[DataKind, _Claim]]],
    ) -> dict[int, dict[DataKind, AccessResult | TributaryError] | BaseException]:
        """One transaction for many people: every request row locked first (in person and kind order,
        as claims lock them), then each person's requests settled, or abandoned if its lookup raised."""
        ids = sorted(claim.request_id for claims in live.values() for _, claim in claims)

        def op(conn: Connection) -> dict[int, dict[DataKind, AccessResult | TributaryError] | BaseException]:
            rows = {
                row.id: row
                for row in conn.execute(
                    select(_DR)
                    .where(one_of(conn, _DR.c.id, ids))
                    .order_by(_DR.c.person_id, _DR.c.kind)
                    .with_for_update()
                )
            }
            # The sources' calls were made whatever happens below: keep their log (and write-back).
            write_all(conn, [deferred for _, pending, _ in looked.values() for deferred in pending])
            out: dict[int, dict[DataKind, AccessResult | TributaryError] | BaseException] = {}
            todo: list[_ToSettle] = []
            now = utcnow()  # one instant for the batch (a caller's `now` wins)
            for i, (found, _pending, error) in looked.items():
                if error is not None:
                    self._abandon_in(conn, [claim for _, claim in live[i]], rows)
                    out[i] = error
                    continue
                out[i] = {}
                for kind, claim, f in found:
                    superseded = _superseded(ctxs[i], kind, claim, rows[claim.request_id])
                    if superseded is not None:
                        out[i][kind] = superseded
                    else:
                        at = ctxs[i].now or now
                        todo.append(_ToSettle(i, kind, claim, f, at, *_status_of(kind, f)))
            self._settle_all(conn, ctxs, todo, out)
            # Each person's answers in the order of its lookups, as they were asked for.
            return {
                i: a if isinstance(a, BaseException) else {kind: a[kind] for kind, _, _ in looked[i][0]}
                for i, a in out.items()
            }

        return run_write(self.engine, op)

    def _settle_all(
        self,
        conn: Connection,
        ctxs: Mapping[int, _Context],
        todo: list[_ToSettle],
        out: dict[int, dict[DataKind, AccessResult | TributaryError] | BaseException],
    ) -> None:
        """Pay for every request of the transaction (each payer all of its own at once: the team's
        wallet lock is the one every settle waits for), then record them: one statement for every
        request settled, one for every contact saved."""
        paid = self._pay(conn, ctxs, todo)
        settles: list[dict] = []
        contacts: dict[int, dict] = {}
        for item, payment in zip(todo, paid, strict=True):
            ctx = ctxs[item.i]
            result = self._record_settle(conn, ctx, item, payment, settles)
            out[item.i][item.kind] = result  # type: ignore[index]
            if not isinstance(result, TributaryError):  # settled: the team has this person
                contacts[ctx.person.id] = _contact_row(ctx, item.now)
        _SETTLE_REQUEST.run(conn, settles)
        if contacts:
            saved = [contacts[person_id] for person_id in sorted(contacts)]  # in person order, as rows are locked
            _INSERT_CONTACTS.run(conn, saved)
            save_accounts_of(conn, list(contacts), max(c["created_at"] for c in saved), {c["team_id"] for c in saved})

    def _pay(
        self, conn: Connection, ctxs: Mapping[int, _Context], todo: list[_ToSettle]
    ) -> list[Payment | TributaryError]:
        """What each request's payer paid (or why it refused), in `todo`'s order."""
        items = [
            Settling(
                self._due(ctxs[t.i], t.kind, t.claim.request_id, t.claim.attempt, t.claim.price, t.now),
                t.claim.hold_id,
                t.chargeable,
            )
            for t in todo
        ]
        by_payer: dict[Payer, list[int]] = {}
        for n, t in enumerate(todo):
            by_payer.setdefault(self._payer(ctxs[t.i].budget), []).append(n)
        paid: list[Payment | TributaryError] = [NOTHING] * len(todo)
        for payer, indexes in by_payer.items():
            payments = payer.settle_many(self.ledger, conn, [items[n] for n in indexes])
            for n, payment in zip(indexes, payments, strict=True):
                paid[n] = payment
        return paid

    @staticmethod
    def _record_settle(
        conn: Connection, ctx: _Context, item: _ToSettle, paid: Payment | TributaryError, settles: list[dict]
    ) -> AccessResult | TributaryError:
        """A paid request's final row appended to `settles` (written by the caller with all the
        others); a refused one left retryable, revealing nothing."""
        if isinstance(paid, TributaryError):
            conn.execute(
                update(_DR)
                .where(_DR.c.id == item.claim.request_id)
                .values(status=DataRequestStatus.NOT_FOUND.value, lease_until=None, hold_id=None)
            )
            return paid
        email, office, mobiles = item.found.email, item.found.office, item.found.mobiles
        settles.append(
            dict(
                id=item.claim.request_id,
                status=item.status.value,
                credits_charged=paid.credits,
                charge_transfer_id=paid.transfer_id,
                member_id=ctx.member.id,
                feature=ctx.feature.value,
                email_address=email.address if email else None,
                email_status=email.status.value if email else None,
                office_phone=office.e164 if office else None,
                mobile_phones=[p.e164 for p in mobiles],
                settled_at=item.now,
            )
        )
        return AccessResult(
            request_id=item.claim.request_id,
            person=ctx.person,
            kind=item.kind,
            status=item.status,
            charged_credits=paid.credits,
            already_accessed=False,
            email=email,
            office_phone=office,
            mobile_phones=mobiles,
        )

    def _abandon(self, claims: Sequence[_Claim], pending: Sequence[DeferredWrites] = ()) -> None:
        """The lookup failed: give the credits back at once and free the requests."""

        def op(conn: Connection) -> None:
            rows = {
                row.id: row
                for row in conn.execute(
                    select(_DR)
                    .where(_DR.c.id.in_(sorted(c.request_id for c in claims)))
                    .order_by(_DR.c.person_id, _DR.c.kind)
                    .with_for_update()
                )
            }
            write_all(conn, pending)  # the calls were made: keep their log
            self._abandon_in(conn, claims, rows)

        run_write(self.engine, op)

    def _abandon_in(self, conn: Connection, claims: Sequence[_Claim], rows) -> None:
        for claim in claims:
            row = rows[claim.request_id]
            if row.attempts != claim.attempt or row.status != DataRequestStatus.IN_PROGRESS.value:
                continue
            if claim.hold_id is not None:
                self.ledger.void(row.team_id, claim.hold_id, key=f"dr:{row.id}:{claim.attempt}:abandon", conn=conn)
            conn.execute(
                update(_DR)
                .where(_DR.c.id == row.id)
                .values(status=DataRequestStatus.NOT_FOUND.value, lease_until=None, hold_id=None)
            )

    # ---- helpers ---------------------------------------------------------------------------

    def _payer(self, budget: Budget | None) -> Payer:
        return payer_for(budget, self.hold_timeout_s)

    def _due(self, ctx: _Context, kind: DataKind, request_id: int, attempt: int, price: int, now: datetime) -> PriceDue:
        """What a request's payer needs; its usage meta is built only if a ledger move records it."""
        return PriceDue(
            ctx.team.id, request_id, attempt, price, now, lambda: self._meta(kind, ctx.feature, ctx.member, ctx.person)
        )

    @staticmethod
    def _meta(kind: DataKind, feature: Feature, member: MemberInfo, person: PersonInfo) -> UsageMeta:
        what = f"{person.full_name}" + (f" ({person.company})" if person.company else "")
        return UsageMeta(
            category=Category.EMAIL if kind == DataKind.EMAIL else Category.MOBILE,
            feature=feature,
            member_id=member.id,
            action=f"access_{kind.value}",
            description=f"Accessed {kind.value} of {what}"[:MAX_TEXT_CHARS],
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
