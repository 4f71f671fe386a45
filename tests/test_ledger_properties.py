"""Property-based proof of the credit ledger's invariants, on SQLite and on PostgreSQL.

A hypothesis state machine drives one team's wallet through grants with expiries, charges, holds
with timeouts, partial and full posts, voids, replays of earlier keys (same body and conflicting
body), retries of keys that failed for lack of credits, clock moves, sweeps, cycle closes (each
run twice) and scheduled refunds. Beside the database it keeps a plain-Python model of the credit
lots and holds (spending takes the soonest-expiring credits first) and after every step checks:

- the sum over every account in the database is zero, and each of the team's accounts equals
  what the model says moved through it;
- available >= 0 and equal to the model's; held credits equal the model's live holds;
- every lot's spent and expired credits equal the model's (the expiry order of spending);
- transfers never change (each snapshot is a prefix of the next), keys are unique, every hold
  resolves at most once and never posts more than it held;
- after a sweep: wallet credits_posted - debits_posted - debits_pending == available, and
  balance_at(now) agrees with balance(now).

Plain example tests then check bad input: each a clear error and no write.
"""

from __future__ import annotations

import calendar
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine

from core.accounts import Accounts
from core.errors import InvalidInput, NotFound
from core.ledger import (
    MAX_HOLD_TIMEOUT_S,
    MAX_KEY_LENGTH,
    Hold,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientCredits,
    Ledger,
    Transfer,
    UsageMeta,
)
from storage.models.enums import AccountKind, Category, Feature, HoldStatus, LotSource, TransferKind

META = UsageMeta(category=Category.EMAIL, feature=Feature.API, action="lookup", data_requested="email")
MONTHLY = 40
_RELEASE_KINDS = (TransferKind.VOID, TransferKind.HOLD_EXPIRE)


# ---- an independent model of the wallet -----------------------------------------------------


def _anchored(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def _next_start(anchor: int, start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return _anchored(year, month, anchor)


def _first_cycle(anchor: int, at: datetime) -> tuple[datetime, datetime]:
    start = _anchored(at.year, at.month, anchor)
    if start > at:
        year, month = (at.year - 1, 12) if at.month == 1 else (at.year, at.month - 1)
        start = _anchored(year, month, anchor)
    return start, _next_start(anchor, start)


@dataclass
class MLot:
    amount: int
    expires_at: datetime | None
    source: LotSource
    spent: int = 0
    expired: int = 0

    @property
    def remaining(self) -> int:
        return self.amount - self.spent - self.expired


@dataclass
class MHold:
    id: int
    amount: int
    expires_at: datetime
    status: HoldStatus = HoldStatus.PENDING
    posted: int = 0
    alloc: dict[int, int] = field(default_factory=dict)  # model lot index -> reserved credits

    @property
    def remaining(self) -> int:
        return self.amount - self.posted


@dataclass
class MRefund:
    key: str
    amount: int
    earned_at: datetime
    id: int
    granted: bool = False


@dataclass
class KeyRecord:
    op: str  # grant | charge | hold | post | void
    args: dict[str, Any]
    ok_id: int | None = None  # transfer (or hold) id of a success
    rejected: tuple[int, int] | None = None  # (requested, available) of an InsufficientCredits


class Model:
    def __init__(self, now: datetime, anchor: int, rollover: bool) -> None:
        self.now = now
        self.anchor = anchor
        self.rollover = rollover
        self.cycle = _first_cycle(anchor, now)
        self.lots: list[MLot] = []
        self.holds: dict[int, MHold] = {}
        self.refunds: list[MRefund] = []
        self.allot(self.cycle)

    def allot(self, cycle: tuple[datetime, datetime]) -> None:
        self.lots.append(MLot(MONTHLY, None if self.rollover else cycle[1], LotSource.ALLOTMENT))

    @staticmethod
    def _order(item: tuple[int, MLot]) -> tuple[bool, datetime, int]:
        index, lot = item
        return (lot.expires_at is None, lot.expires_at or datetime.max.replace(tzinfo=UTC), index)

    def reserved(self, index: int, *, live_only: bool) -> int:
        return sum(
            h.alloc.get(index, 0)
            for h in self.holds.values()
            if h.status == HoldStatus.PENDING and (not live_only or h.expires_at > self.now)
        )

    def free_lots(self) -> list[tuple[int, int]]:
        """(lot index, free credits) of the lots usable now, soonest-expiring first."""
        out = []
        for index, lot in sorted(enumerate(self.lots), key=self._order):
            if lot.expires_at is not None and lot.expires_at <= self.now:
                continue
            free = lot.remaining - self.reserved(index, live_only=True)
            if free > 0:
                out.append((index, free))
        return out

    def available(self) -> int:
        return sum(free for _, free in self.free_lots())

    def held(self) -> int:
        return sum(
            h.remaining for h in self.holds.values() if h.status == HoldStatus.PENDING and h.expires_at > self.now
        )

    def pending(self) -> int:
        """What the accounts count as pending: holds not yet released (timed out or not)."""
        return sum(h.remaining for h in self.holds.values() if h.status == HoldStatus.PENDING)

    def take(self, amount: int) -> dict[int, int]:
        parts: dict[int, int] = {}
        for index, free in self.free_lots():
            if amount == 0:
                break
            part = min(free, amount)
            parts[index] = part
            amount -= part
        assert amount == 0
        return parts

    def expire_lots(self) -> None:
        for index, lot in enumerate(self.lots):
            if lot.expires_at is not None and lot.expires_at <= self.now:
                amount = lot.remaining - self.reserved(index, live_only=False)
                if amount > 0:
                    lot.expired += amount

    def sweep(self) -> None:
        for hold in self.holds.values():
            if hold.status == HoldStatus.PENDING and hold.expires_at <= self.now:
                hold.status = HoldStatus.EXPIRED
                hold.alloc = {}
        self.expire_lots()

    def release(self, hold: MHold, status: HoldStatus) -> None:
        hold.status = status
        hold.alloc = {}
        self.expire_lots()

    def post(self, hold: MHold, amount: int) -> None:
        for index, _ in sorted(((i, self.lots[i]) for i in hold.alloc), key=self._order):
            if amount == 0:
                break
            part = min(hold.alloc[index], amount)
            self.lots[index].spent += part
            hold.alloc[index] -= part
            amount -= part
            hold.posted += part
        assert amount == 0
        hold.alloc = {i: a for i, a in hold.alloc.items() if a > 0}

    def close_cycle(self) -> tuple[int, int, int]:
        """(cycles closed, credits allotted, credits refunded)."""
        self.sweep()
        closed = allotted = refunded = 0
        while self.cycle[1] <= self.now:
            start = self.cycle[1]
            self.cycle = (start, _next_start(self.anchor, start))
            closed += 1
            self.allot(self.cycle)
            allotted += MONTHLY
            for refund in self.refunds:
                if not refund.granted and refund.earned_at < start:
                    refund.granted = True
                    refunded += refund.amount
                    self.lots.append(MLot(refund.amount, None if self.rollover else self.cycle[1], LotSource.REFUND))
            self.sweep()
        return closed, allotted, refunded

    def next_event(self) -> datetime | None:
        events = [h.expires_at for h in self.holds.values() if h.status == HoldStatus.PENDING]
        events += [lot.expires_at for lot in self.lots if lot.expires_at is not None and lot.remaining > 0]
        events.append(self.cycle[1])
        future = [e for e in events if e > self.now]
        return min(future) if future else None


# ---- the state machine ----------------------------------------------------------------------

_team_names = itertools.count()

amounts = st.integers(min_value=1, max_value=80)
timeouts = st.sampled_from([1, 30, 600, 3600, 86400, MAX_HOLD_TIMEOUT_S])
expiry_days = st.one_of(st.none(), st.integers(min_value=1, max_value=45))
clock_moves = st.one_of(
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=600, max_value=3 * 86400),
    st.integers(min_value=20 * 86400, max_value=40 * 86400),
)
starts = st.sampled_from(
    [
        datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
        datetime(2026, 2, 27, 23, 59, 59, tzinfo=UTC),
        datetime(2025, 12, 15, tzinfo=UTC),
    ]
)


def make_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    accounts = Accounts(engine)
    ledger: Ledger = accounts.ledger
    accounts.create_plan("prop-expiring", monthly_credits=MONTHLY, rollover=False)
    accounts.create_plan("prop-rollover", monthly_credits=MONTHLY, rollover=True)

    class LedgerMachine(RuleBasedStateMachine):
        @initialize(start=starts, anchor=st.sampled_from([1, 15, 28, 30, 31]), rollover=st.booleans())
        def open_team(self, start: datetime, anchor: int, rollover: bool) -> None:
            n = next(_team_names)
            plan = "prop-rollover" if rollover else "prop-expiring"
            self.team = accounts.create_team(f"prop-{n}", plan=plan, anchor_day=anchor, now=start).id
            # A bystander team: nothing done to `team` may touch it.
            self.other = accounts.create_team(f"prop-{n}-other", plan=plan, anchor_day=anchor, now=start).id
            ledger.grant(self.other, 7, key="k0", expires_at=None, now=start)
            self.other_transfers = ledger.transfers(self.other)
            self.model = Model(start, anchor, rollover)
            self.keys: dict[str, KeyRecord] = {}
            self.refund_keys: dict[str, MRefund] = {}
            self.counter = itertools.count(1)
            self.snapshot: list[Transfer] = []
            self.after_sweep = False

        # -- helpers --

        def new_key(self) -> str:
            return f"k{next(self.counter)}"

        @property
        def now(self) -> datetime:
            return self.model.now

        def call(self, op: str, args: dict[str, Any], key: str) -> Any:
            if op == "grant":
                return ledger.grant(self.team, args["amount"], key=key, expires_at=args["expires_at"], now=self.now)
            if op == "charge":
                return ledger.charge(self.team, args["amount"], key=key, meta=META, now=self.now)
            if op == "hold":
                return ledger.hold(
                    self.team, args["amount"], key=key, timeout_s=args["timeout_s"], meta=META, now=self.now
                )
            if op == "post":
                return ledger.post(
                    self.team, args["hold_id"], args["amount"], key=key, close=args["close"], now=self.now
                )
            if op == "void":
                return ledger.void(self.team, args["hold_id"], key=key, now=self.now)
            raise AssertionError(op)

        def spend_or_reserve(self, op: str, args: dict[str, Any]) -> None:
            key = self.new_key()
            amount = args["amount"]
            self.model.sweep()  # committed with the rejection or the success
            available = self.model.available()
            record = KeyRecord(op, args)
            self.keys[key] = record
            if available < amount:
                with pytest.raises(InsufficientCredits) as info:
                    self.call(op, args, key)
                assert (info.value.requested_credits, info.value.available_credits) == (amount, available)
                record.rejected = (amount, available)
                return
            result = self.call(op, args, key)
            parts = self.model.take(amount)
            if op == "charge":
                assert isinstance(result, Transfer) and result.kind == TransferKind.SPEND
                for index, part in parts.items():
                    self.model.lots[index].spent += part
            else:
                assert isinstance(result, Hold) and result.status == HoldStatus.PENDING
                expires_at = self.now + timedelta(seconds=args["timeout_s"])
                assert result.expires_at == expires_at
                self.model.holds[result.id] = MHold(result.id, amount, expires_at, alloc=parts)
            assert result.amount_credits == amount
            record.ok_id = result.id

        # -- rules --

        @rule(amount=amounts, days=expiry_days)
        def grant(self, amount: int, days: int | None) -> None:
            # Expiries on a midnight grid, so that lots often tie (ties go to the older lot).
            midnight = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
            expires_at = None if days is None else midnight + timedelta(days=days)
            key = self.new_key()
            args = {"amount": amount, "expires_at": expires_at}
            transfer = self.call("grant", args, key)
            self.model.sweep()
            self.model.lots.append(MLot(amount, expires_at, LotSource.TOPUP))
            assert transfer.kind == TransferKind.GRANT and transfer.amount_credits == amount
            self.keys[key] = KeyRecord("grant", args, ok_id=transfer.id)

        @rule(amount=amounts)
        def charge(self, amount: int) -> None:
            self.spend_or_reserve("charge", {"amount": amount})

        @rule(amount=amounts, timeout_s=timeouts)
        def hold(self, amount: int, timeout_s: int) -> None:
            self.spend_or_reserve("hold", {"amount": amount, "timeout_s": timeout_s})

        @precondition(lambda self: self.model.holds)
        @rule(data=st.data(), close=st.booleans())
        def post(self, data: st.DataObject, close: bool) -> None:
            hold = self.model.holds[data.draw(st.sampled_from(sorted(self.model.holds)), label="hold")]
            amount = data.draw(st.one_of(st.none(), st.integers(1, max(1, hold.remaining) + 2)), label="amount")
            key = self.new_key()
            args = {"hold_id": hold.id, "amount": amount, "close": close}
            if hold.status != HoldStatus.PENDING or hold.expires_at <= self.now:
                with pytest.raises(HoldNotPending):
                    self.call("post", args, key)
                return
            to_post = hold.remaining if amount is None else amount
            if to_post > hold.remaining:
                with pytest.raises(InvalidInput, match="exceeds"):
                    self.call("post", args, key)
                return
            remaining_before = hold.remaining
            transfer = self.call("post", args, key)
            self.model.sweep()
            self.model.post(hold, to_post)
            if close or to_post == remaining_before:
                self.model.release(hold, HoldStatus.POSTED)
            assert transfer.kind == TransferKind.POST and transfer.amount_credits == to_post
            assert transfer.hold_id == hold.id
            self.keys[key] = KeyRecord("post", args, ok_id=transfer.id)

        @precondition(lambda self: self.model.holds)
        @rule(data=st.data())
        def void(self, data: st.DataObject) -> None:
            hold = self.model.holds[data.draw(st.sampled_from(sorted(self.model.holds)), label="hold")]
            key = self.new_key()
            args = {"hold_id": hold.id}
            if hold.status == HoldStatus.POSTED:
                with pytest.raises(HoldNotPending):
                    self.call("void", args, key)
                return
            self.model.sweep()
            remaining = hold.remaining
            was_pending = hold.status == HoldStatus.PENDING
            result = self.call("void", args, key)
            if not was_pending:
                assert result is None  # the timeout (or an earlier void) won: a no-op
                return
            self.model.release(hold, HoldStatus.VOIDED)
            assert result.kind == TransferKind.VOID and result.amount_credits == remaining
            self.keys[key] = KeyRecord("void", args, ok_id=result.id)

        def replayable(self) -> list[str]:
            # A grant whose expiry has passed cannot be re-sent (validation says "not in the future").
            return sorted(
                k
                for k, r in self.keys.items()
                if r.op != "grant" or r.args["expires_at"] is None or r.args["expires_at"] > self.now
            )

        @precondition(lambda self: self.keys)
        @rule(data=st.data())
        def replay_same_body(self, data: st.DataObject) -> None:
            keys = self.replayable()
            if not keys:
                return
            key = data.draw(st.sampled_from(keys), label="key")
            record = self.keys[key]
            self.model.sweep()
            if record.rejected is not None:
                with pytest.raises(InsufficientCredits) as info:
                    self.call(record.op, record.args, key)
                assert (info.value.requested_credits, info.value.available_credits) == record.rejected
                return
            result = self.call(record.op, record.args, key)
            assert result is not None and result.id == record.ok_id

        @precondition(lambda self: self.keys)
        @rule(data=st.data(), cross=st.booleans())
        def replay_other_body(self, data: st.DataObject, cross: bool) -> None:
            key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
            record = self.keys[key]
            args = dict(record.args)
            op = record.op
            if cross:  # the same key for another operation
                op, args = ("hold", {"amount": 1, "timeout_s": 60}) if op == "charge" else ("charge", {"amount": 1})
            elif op == "grant":
                args["expires_at"] = None if args["expires_at"] is not None else self.now + timedelta(days=1)
            elif op in ("charge", "hold"):
                args["amount"] += 1
            elif op == "post":
                args["close"] = not args["close"]
            else:
                args["hold_id"] += 1_000_000
            with pytest.raises(IdempotencyConflict):
                self.call(op, args, key)

        @precondition(lambda self: any(r.rejected for r in self.keys.values()))
        @rule(data=st.data())
        def retry_rejected_after_grant(self, data: st.DataObject) -> None:
            key = data.draw(st.sampled_from(sorted(k for k, r in self.keys.items() if r.rejected)), label="key")
            self.grant(1000, None)
            record = self.keys[key]
            self.model.sweep()
            with pytest.raises(InsufficientCredits) as info:
                self.call(record.op, record.args, key)
            assert (info.value.requested_credits, info.value.available_credits) == record.rejected

        @rule(seconds=clock_moves)
        def advance(self, seconds: int) -> None:
            self.model.now += timedelta(seconds=seconds)

        @rule()
        def advance_to_next_event(self) -> None:
            """Land exactly on a hold timeout, a lot expiry or a cycle end: the boundary instant."""
            event = self.model.next_event()
            if event is not None:
                self.model.now = event

        @rule()
        def sweep(self) -> None:
            ledger.sweep(self.team, now=self.now)
            self.model.sweep()
            self.after_sweep = True

        @rule()
        def close_cycle(self) -> None:
            before_refunds = sum(r.amount for r in self.refunds_granted())
            closed, allotted, refunded = self.model.close_cycle()
            result = accounts.close_cycle(self.team, now=self.now)
            assert (len(result.closed), result.allotted_credits, result.refunded_credits) == (
                closed,
                allotted,
                refunded,
            )
            assert sum(r.amount for r in self.refunds_granted()) == before_refunds + refunded
            assert (result.current.starts_at, result.current.ends_at) == self.model.cycle
            # Run twice: the second close changes nothing.
            transfers, lots = ledger.transfers(self.team), ledger.lots(self.team)
            again = accounts.close_cycle(self.team, now=self.now)
            assert (again.closed, again.allotted_credits, again.refunded_credits) == ([], 0, 0)
            assert again.current == result.current
            assert ledger.transfers(self.team) == transfers and ledger.lots(self.team) == lots

        def refunds_granted(self) -> list[MRefund]:
            return [r for r in self.model.refunds if r.granted]

        @rule(amount=amounts)
        def schedule_refund(self, amount: int) -> None:
            key = f"r{next(self.counter)}"
            refund_id = ledger.schedule_refund(self.team, amount, key=key, earned_at=self.now)
            refund = MRefund(key, amount, self.now, refund_id)
            self.model.refunds.append(refund)
            self.refund_keys[key] = refund

        @precondition(lambda self: self.refund_keys)
        @rule(data=st.data(), same=st.booleans())
        def replay_refund(self, data: st.DataObject, same: bool) -> None:
            refund = self.refund_keys[data.draw(st.sampled_from(sorted(self.refund_keys)), label="refund")]
            if same:
                assert ledger.schedule_refund(self.team, refund.amount, key=refund.key, earned_at=self.now) == refund.id
            else:
                with pytest.raises(IdempotencyConflict):
                    ledger.schedule_refund(self.team, refund.amount + 1, key=refund.key, earned_at=self.now)

        # -- invariants --

        @invariant()
        def balances_match_the_model(self) -> None:
            balance = ledger.balance(self.team, now=self.now)
            assert balance.available_credits >= 0
            assert balance.available_credits == self.model.available()
            assert balance.held_credits == self.model.held()

        @invariant()
        def accounts_sum_to_zero_and_match_the_model(self) -> None:
            totals = ledger.account_totals()
            assert sum(totals.values()) == 0
            lots = self.model.lots
            assert totals[(self.team, AccountKind.WALLET)] == sum(lot.remaining for lot in lots)
            assert totals[(self.team, AccountKind.SPEND)] == sum(lot.spent for lot in lots)
            assert totals[(self.team, AccountKind.EXPIRY)] == sum(lot.expired for lot in lots)
            assert totals[(self.team, AccountKind.REFUND)] == -sum(
                lot.amount for lot in lots if lot.source == LotSource.REFUND
            )
            assert totals[(self.team, AccountKind.ISSUANCE)] == -sum(
                lot.amount for lot in lots if lot.source != LotSource.REFUND
            )
            pending = ledger.pending_totals(self.team)
            assert pending[AccountKind.WALLET] == (self.model.pending(), 0)
            assert pending[AccountKind.SPEND] == (0, self.model.pending())
            if self.after_sweep:
                self.after_sweep = False
                debits_pending, _ = pending[AccountKind.WALLET]
                available = ledger.balance(self.team, now=self.now).available_credits
                assert totals[(self.team, AccountKind.WALLET)] - debits_pending == available
                assert ledger.balance_at(self.team, self.now).available_credits == available

        @invariant()
        def lots_spent_soonest_expiring_first(self) -> None:
            actual = [
                (lot.amount_credits, lot.spent_credits, lot.expired_credits, lot.expires_at, lot.source)
                for lot in ledger.lots(self.team)
            ]
            expected = [(lot.amount, lot.spent, lot.expired, lot.expires_at, lot.source) for lot in self.model.lots]
            assert actual == expected

        @invariant()
        def transfers_are_immutable_and_holds_resolve_once(self) -> None:
            transfers = ledger.transfers(self.team)
            assert transfers[: len(self.snapshot)] == self.snapshot, "a recorded transfer changed or vanished"
            self.snapshot = transfers
            keys = Counter(t.key for t in transfers)
            assert max(keys.values()) == 1, f"a key applied twice: {keys.most_common(1)}"
            assert all(t.amount_credits > 0 for t in transfers)
            holds = {t.id: t for t in transfers if t.kind == TransferKind.HOLD}
            released: set[int] = set()
            posted: Counter[int] = Counter()
            for t in transfers:
                if t.kind == TransferKind.POST:
                    assert t.hold_id not in released, f"hold {t.hold_id} posted after it was released"
                    posted[t.hold_id] += t.amount_credits
                elif t.kind in _RELEASE_KINDS:
                    assert t.hold_id not in released, f"hold {t.hold_id} released twice"
                    released.add(t.hold_id)
                    posted[t.hold_id] += t.amount_credits
            for hold_id, total in posted.items():
                assert total <= holds[hold_id].amount_credits
            for hold in self.model.holds.values():
                view = ledger.hold_view(hold.id)
                assert (view.status, view.posted_credits) == (hold.status, hold.posted)
                resolved = posted[hold.id] == hold.amount
                assert resolved == (hold.status != HoldStatus.PENDING)
            assert ledger.transfers(self.other) == self.other_transfers

    return LedgerMachine


@pytest.mark.slow
def test_ledger_state_machine(engine: Engine) -> None:
    machine = make_machine(engine)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ---- bad input: a clear error and no write -----------------------------------------------------

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def wallet(engine: Engine) -> tuple[Ledger, int]:
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="free", now=T0).id
    accounts.ledger.grant(team, 50, key="seed", expires_at=None, now=T0)
    return accounts.ledger, team


def _state(ledger: Ledger, team: int) -> tuple[Any, ...]:
    return (
        ledger.transfers(team),
        ledger.account_totals(),
        ledger.pending_totals(team),
        ledger.lots(team),
        ledger.balance(team, now=T0),
    )


def _rejects(ledger: Ledger, team: int, error: type[Exception], match: str, call) -> None:
    before = _state(ledger, team)
    with pytest.raises(error, match=match):
        call()
    assert _state(ledger, team) == before, "a rejected call wrote something"


@pytest.mark.parametrize("amount", [0, -1, -100, 1.5, 2.0, "3", None, True, 10**12])
def test_bad_amounts_are_rejected_without_a_write(wallet, amount) -> None:
    ledger, team = wallet
    match = "amount: "
    _rejects(ledger, team, InvalidInput, match, lambda: ledger.charge(team, amount, key="c", meta=META, now=T0))
    _rejects(
        ledger, team, InvalidInput, match, lambda: ledger.hold(team, amount, key="h", timeout_s=60, meta=META, now=T0)
    )
    _rejects(ledger, team, InvalidInput, match, lambda: ledger.grant(team, amount, key="g", expires_at=None, now=T0))
    _rejects(ledger, team, InvalidInput, match, lambda: ledger.schedule_refund(team, amount, key="r", earned_at=T0))
    if amount is not None:  # post's amount None means "all that remains"
        hold = ledger.hold(team, 5, key="h-ok", timeout_s=60, meta=META, now=T0)
        _rejects(ledger, team, InvalidInput, match, lambda: ledger.post(team, hold.id, amount, key="p", now=T0))


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (None, "non-empty"),
        (17, "non-empty"),
        ("x" * (MAX_KEY_LENGTH + 1), "longer than"),
        ("sys:allotment:1", "reserved"),
        ("sys:", "reserved"),
    ],
)
def test_bad_keys_are_rejected_without_a_write(wallet, key, match) -> None:
    ledger, team = wallet
    hold = ledger.hold(team, 5, key="h-ok", timeout_s=60, meta=META, now=T0)
    calls = [
        lambda: ledger.charge(team, 1, key=key, meta=META, now=T0),
        lambda: ledger.hold(team, 1, key=key, timeout_s=60, meta=META, now=T0),
        lambda: ledger.grant(team, 1, key=key, expires_at=None, now=T0),
        lambda: ledger.post(team, hold.id, 1, key=key, now=T0),
        lambda: ledger.void(team, hold.id, key=key, now=T0),
        lambda: ledger.schedule_refund(team, 1, key=key, earned_at=T0),
    ]
    for call in calls:
        _rejects(ledger, team, InvalidInput, f"idempotency key: .*{match}", call)


def test_a_key_of_the_longest_length_is_accepted(wallet) -> None:
    ledger, team = wallet
    transfer = ledger.charge(team, 1, key="x" * MAX_KEY_LENGTH, meta=META, now=T0)
    assert transfer.key == "x" * MAX_KEY_LENGTH


def test_unknown_team_is_not_found_without_a_write(wallet) -> None:
    ledger, team = wallet
    ghost = team + 1000
    for call in [
        lambda: ledger.charge(ghost, 1, key="c", meta=META, now=T0),
        lambda: ledger.hold(ghost, 1, key="h", timeout_s=60, meta=META, now=T0),
        lambda: ledger.grant(ghost, 1, key="g", expires_at=None, now=T0),
        lambda: ledger.void(ghost, 1, key="v", now=T0),
        lambda: ledger.post(ghost, 1, key="p", now=T0),
        lambda: ledger.schedule_refund(ghost, 1, key="r", earned_at=T0),
        lambda: ledger.sweep(ghost, now=T0),
        lambda: ledger.balance(ghost, now=T0),
    ]:
        _rejects(ledger, team, NotFound, "unknown team", call)
    assert sum(ledger.account_totals().values()) == 0


def test_unknown_or_foreign_hold_is_not_found_without_a_write(engine: Engine) -> None:
    accounts = Accounts(engine)
    ledger = accounts.ledger
    team = accounts.create_team("acme", plan="free", now=T0).id
    other = accounts.create_team("other", plan="free", now=T0).id
    foreign = ledger.hold(other, 5, key="h", timeout_s=60, meta=META, now=T0)
    for hold_id in (foreign.id, 999_999):
        _rejects(ledger, team, NotFound, "unknown hold", lambda h=hold_id: ledger.post(team, h, key="p", now=T0))
        _rejects(ledger, team, NotFound, "unknown hold", lambda h=hold_id: ledger.void(team, h, key="v", now=T0))
    assert ledger.hold_view(foreign.id).status == HoldStatus.PENDING


def test_past_or_present_expiry_is_rejected_without_a_write(wallet) -> None:
    ledger, team = wallet
    for expires_at in (T0, T0 - timedelta(seconds=1), T0 - timedelta(days=400)):
        _rejects(
            ledger,
            team,
            InvalidInput,
            "is not in the future",
            lambda e=expires_at: ledger.grant(team, 5, key="g", expires_at=e, now=T0),
        )



@pytest.mark.parametrize("expires_at", ["2026-02-30", "next week", date(2026, 4, 1), 1_800_000_000])
def test_malformed_expiry_is_a_clear_error_without_a_write(wallet, expires_at) -> None:
    ledger, team = wallet
    _rejects(
        ledger, team, InvalidInput, "expires", lambda: ledger.grant(team, 5, key="g", expires_at=expires_at, now=T0)
    )


@pytest.mark.parametrize("timeout_s", [0, -5, MAX_HOLD_TIMEOUT_S + 1, 1.5, "60", None, True])
def test_bad_hold_timeouts_are_rejected_without_a_write(wallet, timeout_s) -> None:
    ledger, team = wallet
    _rejects(
        ledger,
        team,
        InvalidInput,
        "timeout_s",
        lambda: ledger.hold(team, 1, key="h", timeout_s=timeout_s, meta=META, now=T0),
    )


def test_posting_more_than_held_is_rejected_without_a_write(wallet) -> None:
    ledger, team = wallet
    hold = ledger.hold(team, 10, key="h", timeout_s=600, meta=META, now=T0)
    _rejects(ledger, team, InvalidInput, "exceeds", lambda: ledger.post(team, hold.id, 11, key="p", now=T0))
    ledger.post(team, hold.id, 4, key="p1", close=False, now=T0)
    _rejects(ledger, team, InvalidInput, "exceeds", lambda: ledger.post(team, hold.id, 7, key="p2", now=T0))
    # The key of a rejected post stays free: it was never applied.
    assert ledger.post(team, hold.id, 6, key="p2", now=T0).amount_credits == 6
    assert ledger.hold_view(hold.id).status == HoldStatus.POSTED


def test_posting_a_voided_expired_or_posted_hold_is_rejected_without_a_write(wallet) -> None:
    ledger, team = wallet
    voided = ledger.hold(team, 5, key="h1", timeout_s=600, meta=META, now=T0)
    ledger.void(team, voided.id, key="v1", now=T0)
    _rejects(ledger, team, HoldNotPending, "not pending", lambda: ledger.post(team, voided.id, key="p1", now=T0))
    posted = ledger.hold(team, 5, key="h2", timeout_s=600, meta=META, now=T0)
    ledger.post(team, posted.id, key="p2", now=T0)
    _rejects(ledger, team, HoldNotPending, "not pending", lambda: ledger.post(team, posted.id, key="p3", now=T0))
    _rejects(ledger, team, HoldNotPending, "already posted", lambda: ledger.void(team, posted.id, key="v3", now=T0))
    timed_out = ledger.hold(team, 5, key="h4", timeout_s=60, meta=META, now=T0)
    ledger.sweep(team, now=T0 + timedelta(seconds=60))
    _rejects(ledger, team, HoldNotPending, "not pending", lambda: ledger.post(team, timed_out.id, key="p4", now=T0))
    assert ledger.hold_view(timed_out.id).status == HoldStatus.EXPIRED
    # A void that lost the race to the timeout is a no-op, and writes nothing either.
    before = _state(ledger, team)
    assert ledger.void(team, timed_out.id, key="v4", now=T0) is None
    assert _state(ledger, team) == before


def test_rejected_key_stays_rejected_and_conflicts_write_nothing(wallet) -> None:
    ledger, team = wallet
    available = ledger.balance(team, now=T0).available_credits
    with pytest.raises(InsufficientCredits):
        ledger.charge(team, available + 1, key="big", meta=META, now=T0)
    ledger.grant(team, 1000, key="more", expires_at=None, now=T0)
    _rejects(
        ledger,
        team,
        InsufficientCredits,
        "insufficient",
        lambda: ledger.charge(team, available + 1, key="big", meta=META, now=T0),
    )
    _rejects(
        ledger,
        team,
        IdempotencyConflict,
        "different request",
        lambda: ledger.charge(team, 1, key="big", meta=META, now=T0),
    )
    _rejects(
        ledger,
        team,
        IdempotencyConflict,
        "different request",
        lambda: ledger.grant(team, 5, key="more", expires_at=None, now=T0),
    )
    assert "big" not in {t.key for t in ledger.transfers(team)}



def test_unknown_member_is_a_clear_error_without_a_write(wallet) -> None:
    ledger, team = wallet
    meta = UsageMeta(category=Category.EMAIL, member_id=987_654)
    _rejects(ledger, team, NotFound, "member", lambda: ledger.charge(team, 1, key="c", meta=meta, now=T0))



def test_member_of_another_team_is_rejected(engine: Engine) -> None:
    accounts = Accounts(engine)
    ledger = accounts.ledger
    team = accounts.create_team("acme", plan="free", now=T0).id
    accounts.create_team("other", plan="free", now=T0)
    stranger = accounts.add_member("other", "eve@other.test")
    meta = UsageMeta(category=Category.EMAIL, member_id=stranger.id)
    _rejects(
        ledger, team, (NotFound, InvalidInput), "member", lambda: ledger.charge(team, 1, key="c", meta=meta, now=T0)
    )


# ---- found while writing these tests -----------------------------------------------------------



def test_post_release_key_does_not_collide_with_a_user_key(wallet) -> None:
    ledger, team = wallet
    ledger.charge(team, 1, key="p:release", meta=META, now=T0)
    hold = ledger.hold(team, 10, key="h", timeout_s=600, meta=META, now=T0)
    # Posting part and closing releases the rest under the derived key "p:release", already taken.
    transfer = ledger.post(team, hold.id, 4, key="p", now=T0)
    assert transfer.amount_credits == 4
    assert ledger.hold_view(hold.id).status == HoldStatus.POSTED



def test_balance_at_is_never_negative_when_a_reserved_lot_expires(engine: Engine) -> None:
    accounts = Accounts(engine)
    accounts.create_plan("none", monthly_credits=0)
    ledger = accounts.ledger
    team = accounts.create_team("acme", plan="none", now=T0).id
    expiry = T0 + timedelta(hours=1)
    ledger.grant(team, 10, key="g", expires_at=expiry, now=T0)
    hold = ledger.hold(team, 10, key="h", timeout_s=7200, meta=META, now=T0)
    ledger.void(team, hold.id, key="v", now=expiry + timedelta(minutes=30))
    # The void is dated when it happened; the expiry of the credits it released is backdated to
    # the lot's expiry, so in between the same 10 credits count as both held and expired.
    for minutes in (0, 10, 29, 30, 31):
        at = expiry + timedelta(minutes=minutes)
        assert ledger.balance_at(team, at).available_credits >= 0, at
