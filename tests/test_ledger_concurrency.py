"""Many OS processes hammering one team's wallet at once, on PostgreSQL and on SQLite.

Eight spawned processes (each with its own engine) run charges, holds, posts, voids, replays of
the same keys and conflicting reuses of keys, all drawn from one shared key space so that replays
race with first attempts and posts race with voids of the same hold. Each key has one fixed body,
so any two processes sending a key send the same request. Afterwards:

- every process that saw a key succeed saw the same transfer; no key both succeeded and failed
  for lack of credits; a conflicting reuse of a key already seen was always refused;
- the transfer log holds each key once, and exactly the keys the processes saw succeed;
- the balance equals the grant minus what succeeded (each distinct key counted once);
- replaying the log in commit order (ids follow the wallet lock), available never went below
  zero, and no process ever read a negative balance; the accounts sum to zero;
- every hold was resolved at most once and never posted more than it held.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import traceback
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import Engine

from core.accounts import Accounts
from core.ledger import HoldNotPending, IdempotencyConflict, InsufficientCredits, Ledger, UsageMeta
from storage.db import make_engine
from storage.models.enums import AccountKind, Category, Feature, HoldStatus, TransferKind

PROCESSES = 8
OPS_PER_PROCESS = 40
CHARGE_KEYS = 30
HOLD_KEYS = 20
INITIAL_CREDITS = 80  # less than all keys together ask for: the last ones must be refused
META = UsageMeta(category=Category.EMAIL, feature=Feature.API, action="lookup")


# One fixed body per key: replays from different processes are the same request.
def charge_amount(i: int) -> int:
    return 1 + i % 5


def hold_amount(i: int) -> int:
    return 2 + i % 4


def post_amount(i: int) -> int:
    return 1 + i % 2  # partial (or whole, for the smallest holds); close=True releases the rest


def _worker(url: str, team: int, seed: int, barrier: Any, results: Any) -> None:
    engine = make_engine(url)
    ledger = Ledger(engine)
    rng = random.Random(seed)
    log: list[tuple[str, str, str, Any]] = []
    min_available = None

    def attempt(op: str, key: str, fn) -> Any:
        try:
            result = fn()
        except InsufficientCredits as exc:
            log.append((op, key, "insufficient", (exc.requested_credits, exc.available_credits)))
            return None
        except IdempotencyConflict:
            log.append((op, key, "conflict", None))
            return None
        except HoldNotPending:
            log.append((op, key, "not_pending", None))
            return None
        if result is None:
            log.append((op, key, "none", None))
        else:
            log.append((op, key, "ok", (result.id, result.amount_credits)))
        return result

    def hold(i: int) -> Any:
        return attempt(
            "hold",
            f"h{i}",
            lambda: ledger.hold(team, hold_amount(i), key=f"h{i}", timeout_s=3600, meta=META),
        )

    try:
        barrier.wait(timeout=120)
        for n in range(OPS_PER_PROCESS):
            choice = rng.random()
            if choice < 0.40:
                i = rng.randrange(CHARGE_KEYS)
                attempt("charge", f"c{i}", lambda i=i: ledger.charge(team, charge_amount(i), key=f"c{i}", meta=META))
            elif choice < 0.60:
                hold(rng.randrange(HOLD_KEYS))
            elif choice < 0.95:
                i = rng.randrange(HOLD_KEYS)
                held = hold(i)  # a replay if another process got there first: the same hold
                if held is not None:
                    if rng.random() < 0.5:
                        attempt(
                            "post",
                            f"p{i}",
                            lambda i=i, h=held.id: ledger.post(team, h, post_amount(i), key=f"p{i}", close=True),
                        )
                    else:
                        attempt("void", f"v{i}", lambda i=i, h=held.id: ledger.void(team, h, key=f"v{i}"))
            else:
                # Reuse a key this process already saw applied, with another body: always refused.
                seen = [key for op, key, outcome, _ in log if op == "charge" and outcome in ("ok", "insufficient")]
                if seen:
                    key = rng.choice(seen)
                    attempt("conflict", key, lambda k=key: ledger.charge(team, 99, key=k, meta=META))
            if n % 5 == 0:
                available = ledger.balance(team).available_credits
                min_available = available if min_available is None else min(min_available, available)
        results.put((seed, log, min_available, None))
    except BaseException:  # report, never hang the parent
        results.put((seed, log, min_available, traceback.format_exc()))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_processes_hammering_one_wallet(engine: Engine, db_url: str) -> None:
    accounts = Accounts(engine)
    accounts.create_plan("none", monthly_credits=0)
    team = accounts.create_team("hammered", plan="none").id
    ledger = accounts.ledger
    ledger.grant(team, INITIAL_CREDITS, key="initial", expires_at=None)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(db_url, team, seed, barrier, results)) for seed in range(PROCESSES)]
    for p in procs:
        p.start()
    logs = []
    try:
        for _ in procs:
            seed, log, min_available, error = results.get(timeout=240)
            assert error is None, f"process {seed} failed:\n{error}"
            assert min_available is None or min_available >= 0, f"process {seed} read a negative balance"
            logs.append(log)
    except queue.Empty:
        pytest.fail("a worker process did not report within 240 s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    # -- what the processes saw agrees with itself --
    ok: dict[str, set[tuple[int, int]]] = defaultdict(set)
    refused: dict[str, set[tuple[int, int]]] = defaultdict(set)
    outcomes = Counter()
    for log in logs:
        for op, key, outcome, detail in log:
            outcomes[(op, outcome)] += 1
            if op == "conflict":
                assert outcome == "conflict", f"reusing {key} with another body was not refused: {outcome}"
            elif outcome == "ok":
                ok[key].add(detail)
            elif outcome == "insufficient":
                refused[key].add(detail)
    for key, seen in ok.items():
        assert len(seen) == 1, f"{key} returned different results to different processes: {seen}"
        assert key not in refused, f"{key} both succeeded and failed for lack of credits"
    for key, seen in refused.items():
        assert len(seen) == 1, f"{key} was refused with different figures: {seen}"
    # The run must have exercised the races it claims to.
    assert outcomes[("charge", "ok")] and outcomes[("hold", "ok")] and outcomes[("charge", "insufficient")]
    assert outcomes[("post", "ok")] and outcomes[("void", "ok")]
    replays = sum(n for (op, outcome), n in outcomes.items() if outcome == "ok") - len(ok)
    assert replays > 0, "no key was ever replayed"

    # -- the transfer log: each key once, exactly what succeeded --
    transfers = ledger.transfers(team)
    keys = Counter(t.key for t in transfers)
    assert max(keys.values()) == 1, f"a key was applied twice: {keys.most_common(3)}"
    by_key = {t.key: t for t in transfers}
    for key, seen in ok.items():
        [(transfer_id, amount)] = seen
        assert (by_key[key].id, by_key[key].amount_credits) == (transfer_id, amount), key
    assert not set(refused) & set(by_key), "a refused key left a transfer"
    spends = {t.key for t in transfers if t.kind == TransferKind.SPEND}
    posts = {t.key for t in transfers if t.kind == TransferKind.POST}
    assert spends == {k for k in ok if k.startswith("c")}
    assert posts == {k for k in ok if k.startswith("p")}

    # -- balances: the grant minus what succeeded, each key once --
    spent = sum(next(iter(ok[k]))[1] for k in ok if k.startswith(("c", "p")))
    balance = ledger.balance(team)
    assert balance.available_credits >= 0
    assert balance.total_credits == INITIAL_CREDITS - spent
    totals = ledger.account_totals()
    assert sum(totals.values()) == 0
    assert totals[(team, AccountKind.WALLET)] == INITIAL_CREDITS - spent
    assert totals[(team, AccountKind.SPEND)] == spent
    debits_pending, _ = ledger.pending_totals(team)[AccountKind.WALLET]
    assert debits_pending == balance.held_credits
    assert sum(lot.spent_credits for lot in ledger.lots(team)) == spent

    # -- replay the log in commit order: available never below zero; holds resolve once --
    posted = pending = 0
    hold_amounts: dict[int, int] = {}
    settled: Counter[int] = Counter()
    released: set[int] = set()
    for t in transfers:
        if t.kind == TransferKind.GRANT:
            posted += t.amount_credits
        elif t.kind == TransferKind.SPEND:
            posted -= t.amount_credits
        elif t.kind == TransferKind.HOLD:
            pending += t.amount_credits
            hold_amounts[t.id] = t.amount_credits
        elif t.kind == TransferKind.POST:
            assert t.hold_id not in released, f"hold {t.hold_id} posted after it was released"
            posted -= t.amount_credits
            pending -= t.amount_credits
            settled[t.hold_id] += t.amount_credits
        elif t.kind in (TransferKind.VOID, TransferKind.HOLD_EXPIRE):
            assert t.hold_id not in released, f"hold {t.hold_id} released twice"
            released.add(t.hold_id)
            pending -= t.amount_credits
            settled[t.hold_id] += t.amount_credits
        else:
            pytest.fail(f"unexpected transfer {t}")
        assert posted - pending >= 0, f"available went below zero at transfer {t.id}"
    for hold_id, amount in hold_amounts.items():
        assert settled[hold_id] <= amount, f"hold {hold_id} settled {settled[hold_id]} of {amount}"
        view = ledger.hold_view(hold_id)
        assert view.posted_credits == sum(
            t.amount_credits for t in transfers if t.kind == TransferKind.POST and t.hold_id == hold_id
        )
        assert (view.status != HoldStatus.PENDING) == (settled[hold_id] == amount), view
    for i in range(HOLD_KEYS):  # a hold is posted or voided, never both
        assert not (f"p{i}" in by_key and f"v{i}" in by_key), f"hold h{i} both posted and voided"
    assert posted - pending == balance.available_credits
