"""The ledger's vocabulary: its errors, the values it takes and returns, and the checks on them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from core.errors import InvalidInput, TributaryError
from storage.limits import MAX_ACTION_CHARS, MAX_TEXT_CHARS
from storage.models.enums import Category, Feature, HoldStatus, LotSource, TransferKind
from storage.timeutil import as_utc

MAX_AMOUNT_CREDITS = 1_000_000_000
MAX_KEY_LENGTH = 200
MAX_HOLD_TIMEOUT_S = 7 * 24 * 3600
SYSTEM_KEY_PREFIX = "sys:"
# Transfers that count as spend: the usage log's debits and every spend total (core.usage.spend).
SPEND_KINDS = (TransferKind.SPEND, TransferKind.POST)


class LedgerError(TributaryError):
    pass


class InsufficientCredits(LedgerError):
    http_status = 402

    def __init__(self, team_id: int, requested_credits: int, available_credits: int) -> None:
        self.team_id = team_id
        self.requested_credits = requested_credits
        self.available_credits = available_credits
        super().__init__(f"insufficient credits: {requested_credits} requested, {available_credits} available")


class IdempotencyConflict(LedgerError):
    http_status = 409

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used for a different request")


class HoldNotPending(LedgerError):
    http_status = 409


@dataclass(frozen=True)
class UsageMeta:
    """What credits were spent on: recorded on every debit, shown in the usage log."""

    category: Category | None = None
    feature: Feature | None = None
    member_id: int | None = None
    action: str | None = None
    description: str | None = None
    data_requested: str | None = None

    def columns(self) -> dict[str, object]:
        """The transfer row's usage columns."""
        return {
            "category": self.category.value if self.category else None,
            "feature": self.feature.value if self.feature else None,
            "member_id": self.member_id,
            "action": self.action,
            "description": self.description,
            "data_requested": self.data_requested,
        }

    def __post_init__(self) -> None:
        for name, limit in (
            ("action", MAX_ACTION_CHARS), ("description", MAX_TEXT_CHARS), ("data_requested", MAX_TEXT_CHARS)
        ):
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise InvalidInput(f"{name}: longer than {limit} characters")
        for name, vocabulary in (("category", Category), ("feature", Feature)):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                object.__setattr__(self, name, vocabulary(value))
            except ValueError:
                allowed = ", ".join(v.value for v in vocabulary)
                raise InvalidInput(f"{name}: {value!r} is not one of {allowed}") from None


_META_FIELDS = tuple(f.name for f in fields(UsageMeta))


@dataclass(frozen=True)
class Transfer:
    id: int
    team_id: int
    key: str
    kind: TransferKind
    amount_credits: int
    hold_id: int | None
    created_at: datetime
    effective_at: datetime
    meta: UsageMeta = field(default_factory=UsageMeta)


@dataclass(frozen=True, slots=True)
class Charge:
    """One of the charges of `Ledger.charge_many`."""

    amount_credits: int
    key: str
    meta: UsageMeta


@dataclass(frozen=True)
class Hold:
    id: int
    team_id: int
    amount_credits: int
    posted_credits: int
    status: HoldStatus
    expires_at: datetime

    @property
    def remaining_credits(self) -> int:
        return self.amount_credits - self.posted_credits


@dataclass(frozen=True)
class Balance:
    team_id: int
    available_credits: int  # what can be spent now
    held_credits: int  # reserved by live holds
    as_of: datetime

    @property
    def total_credits(self) -> int:
        return self.available_credits + self.held_credits


@dataclass(frozen=True)
class LotView:
    id: int
    source: LotSource
    amount_credits: int
    spent_credits: int
    expired_credits: int
    expires_at: datetime | None


@dataclass(frozen=True)
class UsageRow:
    date: datetime
    feature: str | None
    action: str | None
    description: str | None
    credits: int  # positive: spent; negative: refunded
    data_requested: str | None
    user: str | None
    category: str | None
    kind: TransferKind


@dataclass(frozen=True)
class _Rejected:
    requested: int
    available: int


@dataclass(frozen=True)
class _AccountRef:
    id: int


# --------------------------------------------------------------------------------------------
# Validation


def _check_amount(amount: int, name: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput(f"{name}: must be a whole number of credits, got {amount!r}")
    if amount <= 0:
        raise InvalidInput(f"{name}: must be positive, got {amount}")
    if amount > MAX_AMOUNT_CREDITS:
        raise InvalidInput(f"{name}: {amount} exceeds the limit of {MAX_AMOUNT_CREDITS}")
    return amount


def _check_key(key: str, *, system: bool = False) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("idempotency key: must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotency key: longer than {MAX_KEY_LENGTH} characters")
    if not system and key.startswith(SYSTEM_KEY_PREFIX):
        raise InvalidInput(f"idempotency key: the prefix {SYSTEM_KEY_PREFIX!r} is reserved")
    return key


def _check_time(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name}: must be a date and time, got {value!r}")
    return as_utc(value)


def _body_hash(operation: str, **body: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value).isoformat()
        if isinstance(value, UsageMeta):
            # UsageMeta is flat: the same mapping as dataclasses.asdict, without its deep copy.
            return {name: getattr(value, name) for name in _META_FIELDS}
        raise TypeError(type(value))

    canonical = json.dumps({"op": operation, **body}, sort_keys=True, default=default)
    return hashlib.sha256(canonical.encode()).hexdigest()
