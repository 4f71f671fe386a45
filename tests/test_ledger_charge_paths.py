"""`Ledger.charge` has a fast path for the plain charge (precompiled SQL) and a general path for
everything else. These tests prove the fast path changes no behaviour, on SQLite and PostgreSQL.

- Differential (hypothesis): the same random story of grants with expiries, charges (new keys,
  replays, conflicting replays, retries of refused keys, own / foreign / unknown members), holds,
  voids and clock moves is told to two teams of one database: one through the real ledger, one
  through a ledger whose fast path always declines, so every charge takes the general path. Every
  outcome, every transfer (as read back from the database), every lot and every account total
  must be the same for both, and the story must have taken the fast path at least once.
- The same for `Ledger.charge_many` (a settle's charges in one statement on PostgreSQL): a story's
  batches of charges go through `charge_many` on both sides; the reference's batch path declines, so
  its batches are charges one by one on the general path.
- Examples for the cases the fast path must hand over: a lot that expired at `now` but is not swept
  yet, a refused key that credits arrived for since, a first lot too small to cover the charge.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine

from core.accounts import Accounts
from core.errors import TributaryError
from core.ledger import Charge, InsufficientCredits, Ledger, Transfer, UsageMeta
from storage.models.enums import Category, Feature

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
META = UsageMeta(category=Category.EMAIL, feature=Feature.API, action="lookup", data_requested="email")


class GeneralPathLedger(Ledger):
    """The reference: the fast path declines every charge, so the general path decides all."""

    fast_taken = 0

    def _charge_plain(self, conn: Connection, *args: Any, **kwargs: Any) -> Transfer | None:
        return None

    def _charge_many_plain(self, conn: Connection, *args: Any, **kwargs: Any) -> list[Transfer] | None:
        return None


class CountingLedger(Ledger):
    """The real ledger, counting how many charges (and batches of charges) the fast path decided."""

    fast_taken = 0
    batches_taken = 0

    def _charge_plain(self, conn: Connection, *args: Any, **kwargs: Any) -> Transfer | None:
        transfer = super()._charge_plain(conn, *args, **kwargs)
        self.fast_taken += transfer is not None
        return transfer

    def _charge_many_plain(self, conn: Connection, *args: Any, **kwargs: Any) -> list[Transfer] | None:
        transfers = super()._charge_many_plain(conn, *args, **kwargs)
        self.batches_taken += transfers is not None
        return transfers


_grants = st.tuples(st.just("grant"), st.integers(5, 80), st.sampled_from([None, 1, 2, 5]))
_charges = st.tuples(
    st.just("charge"),
    st.integers(1, 12),
    st.sampled_from(["new", "new", "new", "replay", "conflict"]),
    st.sampled_from(["none", "own", "own", "foreign", "unknown"]),
)
# A settle's charges: mostly new keys and good members (so that many batches are plain), sometimes a
# key used before (or twice in one batch), another team's member or an unknown one.
_batch_charge = st.tuples(
    st.integers(1, 6),
    st.sampled_from(["new"] * 8 + ["replay", "conflict"]),
    st.sampled_from(["none", "own"] * 8 + ["foreign", "unknown"]),
)
_batches = st.tuples(st.just("batch"), st.lists(_batch_charge, min_size=1, max_size=5))
# Charges are what the fast path decides: most of a story.
_ops = st.one_of(
    _grants,
    _charges,
    _charges,
    _charges,
    _batches,
    _batches,
    st.tuples(st.just("hold"), st.integers(1, 20), st.integers(60, 3 * 86400)),
    st.tuples(st.just("void"), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.integers(1, 3 * 86400)),
)


class Side:
    """One team told the story, with its own ledger."""

    def __init__(self, engine: Engine, ledger: Ledger, name: str, foreign_member: int) -> None:
        accounts = Accounts(engine)
        self.ledger = ledger
        self.team = accounts.create_team(name, plan="zero", now=START).id
        self.own_member = accounts.add_member(self.team, f"rep@{name}.test").id
        self.foreign_member = foreign_member
        self.holds: list[int] = []
        self.hold_index: dict[int, int] = {}

    def member(self, choice: str) -> int | None:
        return {"none": None, "own": self.own_member, "foreign": self.foreign_member, "unknown": 10**9}[choice]

    def apply(self, op: tuple, step: int, now: datetime, keys: list[tuple[str, int, str]]) -> Any:
        kind = op[0]
        if kind == "grant":
            _, amount, days = op
            expires = None if days is None else now + timedelta(days=days)
            return self._outcome(
                lambda: self._transfer(
                    self.ledger.grant(self.team, amount, key=f"g{step}", expires_at=expires, now=now)
                )
            )
        if kind == "charge":
            _, amount, reuse, member = op
            key, amount, member = self._charge_key(step, amount, reuse, member, keys)
            meta = UsageMeta(**{**META.__dict__, "member_id": self.member(member)})
            return self._outcome(
                lambda: self._transfer(self.ledger.charge(self.team, amount, key=key, meta=meta, now=now))
            )
        if kind == "batch":
            return self._outcome(lambda: self._charge_many(op[1], step, now, keys))
        if kind == "hold":
            _, amount, timeout_s = op
            result = self._outcome(
                lambda: self.ledger.hold(self.team, amount, key=f"h{step}", timeout_s=timeout_s, meta=META, now=now)
            )
            if result[0] == "ok":
                self.hold_index[result[1].id] = len(self.holds)
                self.holds.append(result[1].id)
                return ("ok", "hold", result[1].amount_credits, result[1].expires_at)
            return result
        if kind == "void":
            if not self.holds:
                return None
            hold_id = self.holds[op[1] % len(self.holds)]
            voided = self._outcome(lambda: self.ledger.void(self.team, hold_id, key=f"v{step}", now=now))
            return voided if voided[0] == "error" or voided[1] is None else ("ok", self._transfer(voided[1]))
        return None

    def _charge_many(self, batch: list[tuple], step: int, now: datetime, keys: list[tuple[str, int, str]]) -> list:
        charges = []
        for j, (amount, reuse, member) in enumerate(batch):
            key, amount, member = self._charge_key(step * 100 + j, amount, reuse, member, keys)
            charges.append(Charge(amount, key, UsageMeta(**{**META.__dict__, "member_id": self.member(member)})))
        results = self.ledger.charge_many(self.team, charges, now=now)
        return [
            self._transfer(r) if isinstance(r, Transfer) else ("refused", str(r).replace(f"team {self.team}", "team T"))
            for r in results
        ]

    @staticmethod
    def _charge_key(
        step: int, amount: int, reuse: str, member: str, keys: list[tuple[str, int, str]]
    ) -> tuple[str, int, str]:
        if reuse == "new" or not keys:
            keys.append((f"c{step}", amount, member))
            return keys[-1]
        key, old_amount, old_member = keys[step % len(keys)]
        if reuse == "replay":
            return key, old_amount, old_member
        return key, old_amount + 1, old_member  # same key, another body

    # Ids differ between the two teams; outcomes are compared with them named by role.
    def _outcome(self, fn: Any) -> Any:
        try:
            return ("ok", fn())
        except TributaryError as exc:
            return ("error", type(exc).__name__, str(exc).replace(f"team {self.team}", "team T"))

    def _transfer(self, t: Transfer) -> tuple:
        member = {None: None, self.own_member: "own", self.foreign_member: "foreign"}.get(t.meta.member_id, "?")
        meta = (t.meta.category, t.meta.feature, member, t.meta.action, t.meta.description, t.meta.data_requested)
        key = re.sub(r"\d+", "#", t.key) if t.key.startswith("sys:") else t.key  # system keys hold ids
        return (key, t.kind, t.amount_credits, self.hold_index.get(t.hold_id), t.created_at, t.effective_at, meta)

    def state(self) -> tuple:
        stored = [self._transfer(t) for t in self.ledger.transfers(self.team)]
        lots = [
            (lot.source, lot.amount_credits, lot.spent_credits, lot.expired_credits, lot.expires_at)
            for lot in self.ledger.lots(self.team)
        ]
        totals = {kind: value for (team, kind), value in self.ledger.account_totals(self.team).items()}
        return stored, lots, totals, self.ledger.pending_totals(self.team)


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    accounts = Accounts(engine)
    accounts.create_plan("zero", monthly_credits=0)
    return accounts


def test_fast_path_decides_exactly_like_the_general_path(engine: Engine, accounts: Accounts) -> None:
    foreign_team = accounts.create_team("foreign", plan="zero", now=START).id
    foreign_member = accounts.add_member(foreign_team, "rep@foreign.test").id
    stories = iter(range(10**6))

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # Stories open with a grant, so that most of their charges have credits to be plain.
    @given(st.tuples(_grants).map(list), st.lists(_ops, min_size=6, max_size=20))
    def story(opening: list[tuple], rest: list[tuple]) -> None:
        ops = opening + rest
        n = next(stories)
        fast = Side(engine, CountingLedger(engine), f"fast{n}", foreign_member)
        general = Side(engine, GeneralPathLedger(engine), f"general{n}", foreign_member)
        fast_keys: list[tuple[str, int, str]] = []
        general_keys: list[tuple[str, int, str]] = []
        now = START
        for step, op in enumerate(ops):
            if op[0] == "advance":
                now += timedelta(seconds=op[1])
                continue
            outcome = fast.apply(op, step, now, fast_keys)
            assert outcome == general.apply(op, step, now, general_keys), (step, op)
            if op[0] == "charge" and outcome[0] == "ok":
                # What the charge returned is what the database holds.
                assert outcome[1] in fast.state()[0]
            if op[0] == "batch" and outcome[0] == "ok":
                stored = fast.state()[0]
                assert all(t in stored for t in outcome[1] if t[0] != "refused")
        assert fast.state() == general.state()
        fast_charges.append(fast.ledger.fast_taken)
        fast_batches.append(fast.ledger.batches_taken)

    fast_charges: list[int] = []
    fast_batches: list[int] = []
    story()
    assert sum(fast_charges) > 0, "no story took the fast path: the test proves nothing"
    if engine.dialect.name == "postgresql":  # SQLite charges a batch one by one (no round trips to save)
        assert sum(fast_batches) > 0, "no batch took the one-statement path: the test proves nothing"


def test_a_plain_charge_is_decided_by_the_fast_path_and_reads_back_identically(
    engine: Engine, accounts: Accounts
) -> None:
    team = accounts.create_team("plain", plan="zero", now=START).id
    member = accounts.add_member(team, "rep@plain.test").id
    ledger = CountingLedger(engine)
    ledger.grant(team, 10, key="g", expires_at=START + timedelta(days=3), now=START)
    meta = UsageMeta(**{**META.__dict__, "member_id": member})
    now = START + timedelta(hours=1, microseconds=7)
    charged = ledger.charge(team, 4, key="c", meta=meta, now=now)
    assert ledger.fast_taken == 1
    assert ledger.transfers(team)[-1] == charged
    assert ledger.charge(team, 4, key="c", meta=meta, now=now + timedelta(hours=1)) == charged  # replay
    assert ledger.fast_taken == 1
    assert ledger.balance(team, now).available_credits == 6
    assert [lot.spent_credits for lot in ledger.lots(team)] == [4]


def test_a_lot_expiring_at_now_is_swept_not_spent(engine: Engine, accounts: Accounts) -> None:
    team = accounts.create_team("expiring", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    expires = START + timedelta(days=1)
    ledger.grant(team, 10, key="g", expires_at=expires, now=START)
    with pytest.raises(InsufficientCredits):
        ledger.charge(team, 1, key="c", meta=META, now=expires)
    assert ledger.fast_taken == 0
    assert [(lot.spent_credits, lot.expired_credits) for lot in ledger.lots(team)] == [(0, 10)]


def test_a_refused_key_stays_refused_after_credits_arrive(engine: Engine, accounts: Accounts) -> None:
    team = accounts.create_team("refused", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    with pytest.raises(InsufficientCredits):
        ledger.charge(team, 5, key="c", meta=META, now=START)
    ledger.grant(team, 100, key="g", expires_at=None, now=START)
    with pytest.raises(InsufficientCredits):
        ledger.charge(team, 5, key="c", meta=META, now=START)
    assert ledger.fast_taken == 0
    assert ledger.balance(team, START).available_credits == 100


def test_a_charge_larger_than_the_first_lot_spends_soonest_expiring_first(engine: Engine, accounts: Accounts) -> None:
    team = accounts.create_team("split", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    ledger.grant(team, 10, key="late", expires_at=START + timedelta(days=9), now=START)
    ledger.grant(team, 3, key="soon", expires_at=START + timedelta(days=2), now=START)
    ledger.hold(team, 2, key="h", timeout_s=3600, meta=META, now=START)  # reserves 2 of "soon"
    ledger.charge(team, 4, key="c", meta=META, now=START)
    assert ledger.fast_taken == 0  # "soon" has 1 free credit: not plain
    assert [lot.spent_credits for lot in ledger.lots(team)] == [3, 1]
    ledger.charge(team, 2, key="d", meta=META, now=START)
    assert ledger.fast_taken == 1
    assert [lot.spent_credits for lot in ledger.lots(team)] == [5, 1]


def _charges_of(*amounts_and_keys: tuple[int, str]) -> list[Charge]:
    return [Charge(amount, key, META) for amount, key in amounts_and_keys]


def test_a_plain_batch_is_one_statement_and_reads_back_like_charges_one_by_one(
    engine: Engine, accounts: Accounts
) -> None:
    team = accounts.create_team("batch", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    ledger.grant(team, 20, key="g", expires_at=START + timedelta(days=3), now=START)
    charged = ledger.charge_many(team, _charges_of((4, "a"), (8, "b"), (1, "c")), now=START)
    assert ledger.batches_taken == (1 if engine.dialect.name == "postgresql" else 0)
    assert [t.key for t in charged] == ["a", "b", "c"]
    assert ledger.transfers(team)[-3:] == charged
    assert ledger.balance(team, START).available_credits == 7
    assert [lot.spent_credits for lot in ledger.lots(team)] == [13]
    # Each is then a key like any other: charged again, it is replayed, not charged twice.
    assert ledger.charge(team, 8, key="b", meta=META, now=START) == charged[1]
    assert ledger.balance(team, START).available_credits == 7


def test_a_batch_with_a_key_used_before_replays_it_and_charges_the_rest(engine: Engine, accounts: Accounts) -> None:
    team = accounts.create_team("replay", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    ledger.grant(team, 20, key="g", expires_at=None, now=START)
    first = ledger.charge(team, 5, key="a", meta=META, now=START)
    charged = ledger.charge_many(team, _charges_of((3, "b"), (5, "a")), now=START)
    assert ledger.batches_taken == 0  # a known key: one by one
    assert charged[1] == first and charged[0].key == "b"
    twice = ledger.charge_many(team, _charges_of((2, "c"), (2, "c")), now=START)
    assert ledger.batches_taken == 0  # a key twice: one by one
    assert twice[0] == twice[1]
    assert ledger.balance(team, START).available_credits == 10


def test_a_batch_the_wallet_cannot_pay_whole_charges_what_it_can_in_order(engine: Engine, accounts: Accounts) -> None:
    team = accounts.create_team("short", plan="zero", now=START).id
    ledger = CountingLedger(engine)
    ledger.grant(team, 6, key="soon", expires_at=START + timedelta(days=1), now=START)
    ledger.grant(team, 4, key="late", expires_at=START + timedelta(days=9), now=START)
    charged = ledger.charge_many(team, _charges_of((5, "a"), (4, "b"), (2, "c"), (1, "d")), now=START)
    assert ledger.batches_taken == 0  # the first lot (6) cannot cover 12
    assert [type(t).__name__ for t in charged] == ["Transfer", "Transfer", "InsufficientCredits", "Transfer"]
    assert ledger.balance(team, START).available_credits == 0
    assert [lot.spent_credits for lot in ledger.lots(team)] == [6, 4]
    # The refused key stays refused, as a refused charge's key does.
    with pytest.raises(InsufficientCredits):
        ledger.charge(team, 2, key="c", meta=META, now=START)
