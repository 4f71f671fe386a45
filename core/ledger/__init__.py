"""The credit ledger: double entry, immutable transfers, two-phase holds, expiring credit lots.

Model (after TigerBeetle and Formance):
- Each team has five accounts: its wallet and the system accounts issuance, spend, refund, expiry.
  A transfer moves an amount from a debit account to a credit account and never changes; the sum
  of (credits - debits) over all accounts is therefore always zero.
- Every transfer carries an idempotency key, unique per team. Same key and same body: the original
  result. Same key, other body: `IdempotencyConflict`. A key whose first attempt failed for lack of
  credits is remembered and fails the same way for ever (TigerBeetle's `id_already_failed`).
- Credits live in lots (one per grant) with an expiry; spending takes the soonest-expiring first.
- A hold is a pending transfer that reserves credits from specific lots; it is posted (fully or in
  part), voided, or releases itself when its timeout passes.
- Available = live lots' unspent credits - live holds. It never goes below zero: a charge or hold
  that would overdraw raises `InsufficientCredits` and changes no balance.

Concurrency: every write takes the team's wallet row lock first (`SELECT ... FOR UPDATE` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and only then touches the team's other rows, so writers
of one team serialise and no two writers can deadlock; `run_write` re-runs a transaction whole on
serialization failure or deadlock.

Speed: the plain charge (nothing to sweep, a new key, one lot covering it) is decided by a fast
path of precompiled SQL (on PostgreSQL the lock and one statement); everything else, and anything
the fast path declines, goes through the general code (writes.py; the fast path: sql.py).

Charge, hold, post and void accept `conn=` to run inside a caller's transaction (a data request
settles its charge and records what it bought in one commit).

Time: reads and writes take `now` so that tests and the cycle closer can speak of any instant.
Timed-out holds and expired lots stop counting at once; the transfers that record them (a
`hold_expire` or `expire`, dated when the event took effect) are written by the next write for the
team, which sweeps before doing anything else.
"""

from core.ledger.reads import LedgerReads
from core.ledger.types import (
    MAX_AMOUNT_CREDITS,
    MAX_HOLD_TIMEOUT_S,
    MAX_KEY_LENGTH,
    SPEND_KINDS,
    SYSTEM_KEY_PREFIX,
    Balance,
    Charge,
    Hold,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    LotView,
    Transfer,
    UsageMeta,
    UsageRow,
)
from core.ledger.writes import Ledger

__all__ = [
    "Charge",
    "MAX_AMOUNT_CREDITS",
    "MAX_HOLD_TIMEOUT_S",
    "MAX_KEY_LENGTH",
    "SPEND_KINDS",
    "SYSTEM_KEY_PREFIX",
    "Balance",
    "Hold",
    "HoldNotPending",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Ledger",
    "LedgerError",
    "LedgerReads",
    "LotView",
    "Transfer",
    "UsageMeta",
    "UsageRow",
]
