"""Digest periods: UTC days, and UTC weeks starting on Monday; each one is [start, end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core.errors import InvalidInput
from storage.models.digests import DigestPeriod
from storage.timeutil import as_utc

_LENGTH = {DigestPeriod.DAILY: timedelta(days=1), DigestPeriod.WEEKLY: timedelta(days=7)}


def parse_period(value: str | DigestPeriod, *, allow_off: bool = False) -> DigestPeriod:
    choices = [p.value for p in DigestPeriod if allow_off or p != DigestPeriod.OFF]
    if isinstance(value, str) and value.strip().lower() in choices:
        return DigestPeriod(value.strip().lower())
    raise InvalidInput(f"period: {value!r} is not one of {', '.join(choices)}")


@dataclass(frozen=True)
class Period:
    kind: DigestPeriod
    start: datetime  # inclusive, UTC midnight
    end: datetime  # exclusive

    @property
    def days(self) -> tuple[date, ...]:
        count = (self.end - self.start).days
        return tuple(self.start.date() + timedelta(days=i) for i in range(count))

    @property
    def label(self) -> str:
        first, last = self.days[0], self.days[-1]
        if first == last:
            return f"{first:%a %Y-%m-%d}"
        return f"{first:%a %Y-%m-%d} to {last:%a %Y-%m-%d}"


def period_containing(kind: DigestPeriod | str, at: datetime) -> Period:
    kind = parse_period(kind)
    at = as_utc(at)
    start = datetime.combine(at.date(), time(0), tzinfo=UTC)
    if kind == DigestPeriod.WEEKLY:
        start -= timedelta(days=at.weekday())  # Monday is 0
    return Period(kind, start, start + _LENGTH[kind])


def last_complete_period(kind: DigestPeriod | str, now: datetime) -> Period:
    """The most recent period that has ended by `now` (yesterday; last Monday-to-Sunday week)."""
    current = period_containing(kind, now)
    return period_containing(current.kind, current.start - timedelta(seconds=1))
