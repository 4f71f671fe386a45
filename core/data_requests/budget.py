"""Who pays for a data request, and how: its own hold, a job's spend cap, or the wallet at settle.

Every request has a payer, chosen by the caller's `Budget`:
- no budget: `OwnHold` — the price is held before the lookup, then posted if the request found
  something chargeable, else voided;
- `Budget(hold_id)`: `JobCap` — the price is posted from the job's hold (its spend cap), so the job
  never spends more than the hold; nothing is held per request;
- `Budget.uncapped()`: `WalletAtSettle` — the price is charged from the wallet in the settle
  transaction, only when something chargeable was found (no hold and void per request).

A payer that cannot pay refuses: nothing is charged or revealed and the request stays retryable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from core.errors import InvalidInput, TributaryError
from core.ledger import Charge, HoldNotPending, InsufficientCredits, Ledger, UsageMeta
from storage.models.enums import HoldStatus


class BudgetExhausted(TributaryError):
    """A job's spend cap (its ledger hold) cannot pay for this request: nothing was charged or revealed."""

    http_status = 402


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
class PriceDue:
    """One attempt at one request, as its payer sees it: the price and the ledger keys to use."""

    team_id: int
    request_id: int
    attempt: int
    price: int
    now: datetime
    meta: Callable[[], UsageMeta]  # built only when a ledger move records it (it costs CPU per request)

    def key(self, step: str) -> str:
        return f"dr:{self.request_id}:{self.attempt}:{step}"


@dataclass(frozen=True)
class Payment:
    """What settling a request moved: the credits charged and the transfer that charged them."""

    credits: int = 0
    transfer_id: int | None = None


NOTHING = Payment()


@dataclass(frozen=True, slots=True)
class Settling:
    """One request of a settle transaction, as its payer sees it."""

    due: PriceDue
    hold_id: int | None  # what `claim` took
    chargeable: bool  # its finding is worth its price


class Payer:
    """One way of paying. `claim` runs in the claim transaction, before the lookup; `settle` in the
    settle transaction, after it. Each returns the error that refuses the request instead of raising."""

    def claim(self, ledger: Ledger, conn: Connection, due: PriceDue) -> int | None | TributaryError:
        """The hold taken for this request (None: none), or why it cannot be paid."""
        raise NotImplementedError

    def settle(
        self, ledger: Ledger, conn: Connection, due: PriceDue, hold_id: int | None, chargeable: bool
    ) -> Payment | TributaryError:
        """Pay for a chargeable finding, release what `claim` took otherwise; or why it cannot be paid."""
        raise NotImplementedError

    def settle_many(
        self, ledger: Ledger, conn: Connection, items: Sequence[Settling]
    ) -> list[Payment | TributaryError]:
        """`settle` for each of `items` in turn (a payer that can pay many at once does it faster)."""
        return [self.settle(ledger, conn, item.due, item.hold_id, item.chargeable) for item in items]


@dataclass(frozen=True)
class OwnHold(Payer):
    """No budget: the request holds its own price for the lookup, then posts or voids it."""

    timeout_s: int  # how long the hold outlives a lookup that never settles

    def claim(self, ledger: Ledger, conn: Connection, due: PriceDue) -> int | None | TributaryError:
        if due.price <= 0:
            return None
        try:
            hold = ledger.hold(
                due.team_id,
                due.price,
                key=due.key("hold"),
                timeout_s=self.timeout_s,
                meta=due.meta(),
                now=due.now,
                conn=conn,
            )
        except InsufficientCredits as exc:
            return exc
        return hold.id

    def settle(
        self, ledger: Ledger, conn: Connection, due: PriceDue, hold_id: int | None, chargeable: bool
    ) -> Payment | TributaryError:
        if hold_id is None:
            return NOTHING
        if not chargeable:
            ledger.void(due.team_id, hold_id, key=due.key("void"), now=due.now, conn=conn)
            return NOTHING
        transfer = ledger.post(due.team_id, hold_id, key=due.key("post"), now=due.now, conn=conn)
        return Payment(transfer.amount_credits, transfer.id)


@dataclass(frozen=True)
class JobCap(Payer):
    """`Budget(hold_id)`: the price is posted from the job's hold, which caps what the job spends."""

    hold_id: int

    def claim(self, ledger: Ledger, conn: Connection, due: PriceDue) -> int | None | TributaryError:
        if due.price > 0:
            # Checked again, authoritatively, when the price is posted from the budget.
            job_hold = ledger.hold_in(conn, self.hold_id)
            if job_hold.status != HoldStatus.PENDING or job_hold.remaining_credits < due.price:
                return BudgetExhausted(
                    f"spend cap reached: {due.price} credits needed, {job_hold.remaining_credits} left in the cap"
                )
        return None

    def settle(
        self, ledger: Ledger, conn: Connection, due: PriceDue, hold_id: int | None, chargeable: bool
    ) -> Payment | TributaryError:
        if not chargeable or due.price <= 0:
            return NOTHING
        try:
            transfer = ledger.post(
                due.team_id,
                self.hold_id,
                due.price,
                key=due.key("post"),
                close=False,
                meta=due.meta(),
                now=due.now,
                conn=conn,
            )
        except (InvalidInput, HoldNotPending) as exc:
            return BudgetExhausted(f"spend cap reached: {exc}")
        return Payment(transfer.amount_credits, transfer.id)


@dataclass(frozen=True)
class WalletAtSettle(Payer):
    """`Budget.uncapped()`: nothing at claim; a chargeable finding is charged from the wallet at settle."""

    def claim(self, ledger: Ledger, conn: Connection, due: PriceDue) -> int | None | TributaryError:
        return None  # charged from the wallet at settle, if found

    def settle(
        self, ledger: Ledger, conn: Connection, due: PriceDue, hold_id: int | None, chargeable: bool
    ) -> Payment | TributaryError:
        if not chargeable or due.price <= 0:
            return NOTHING
        try:
            transfer = ledger.charge(
                due.team_id, due.price, key=due.key("charge"), meta=due.meta(), now=due.now, conn=conn
            )
        except InsufficientCredits as exc:
            return exc
        return Payment(transfer.amount_credits, transfer.id)

    def settle_many(
        self, ledger: Ledger, conn: Connection, items: Sequence[Settling]
    ) -> list[Payment | TributaryError]:
        """One `Ledger.charge_many` per team and instant: the team's wallet lock, which every settle
        of the team waits for, is held for two round trips, not two per charge."""
        out: list[Payment | TributaryError] = [NOTHING] * len(items)
        batches: dict[tuple[int, datetime], list[int]] = {}
        for i, item in enumerate(items):
            if item.chargeable and item.due.price > 0:
                batches.setdefault((item.due.team_id, item.due.now), []).append(i)
        for (team_id, now), indexes in batches.items():
            charges = [Charge(items[i].due.price, items[i].due.key("charge"), items[i].due.meta()) for i in indexes]
            for i, charged in zip(indexes, ledger.charge_many(team_id, charges, now=now, conn=conn), strict=True):
                refused = isinstance(charged, InsufficientCredits)
                out[i] = charged if refused else Payment(charged.amount_credits, charged.id)
        return out


def payer_for(budget: Budget | None, hold_timeout_s: int) -> Payer:
    """The payer of a request made with `budget` (None: the request holds its own price)."""
    if budget is None:
        return OwnHold(hold_timeout_s)
    if budget.hold_id is None:
        return WalletAtSettle()
    return JobCap(budget.hold_id)
