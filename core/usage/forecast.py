"""When a team's credits run out at its current pace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

from storage.timeutil import as_utc

# The pace is the spend of the trailing seven days: a whole week, so quiet weekends and busy
# weekdays average out instead of swinging the forecast from one day to the next.
PACE_WINDOW_DAYS = 7
# Beyond this the date means nothing (and would overflow `date`): report "not in sight" instead.
MAX_FORECAST_DAYS = 3650


@dataclass(frozen=True)
class RunOutForecast:
    window_start: datetime  # the pace is the spend in [window_start, window_end)
    window_end: datetime
    window_spent_credits: int
    available_credits: int
    # None when nothing was spent in the window (no pace), or when it lies beyond MAX_FORECAST_DAYS.
    runs_out_on: date | None

    @property
    def window_days(self) -> int:
        return (self.window_end - self.window_start).days

    @property
    def credits_per_day(self) -> Fraction:
        return Fraction(self.window_spent_credits, self.window_days)

    @property
    def beyond_horizon(self) -> bool:
        return self.runs_out_on is None and self.window_spent_credits > 0


def pace_window(now: datetime) -> tuple[datetime, datetime]:
    now = as_utc(now)
    return now - timedelta(days=PACE_WINDOW_DAYS), now


def forecast_run_out(available_credits: int, window_spent_credits: int, now: datetime) -> RunOutForecast:
    """The UTC date on which `available_credits` reach zero if spending goes on at the window's rate.

    At a rate of S credits per W days, A credits last A * W / S days from `now`."""
    if available_credits < 0 or window_spent_credits < 0:
        raise ValueError("credits cannot be negative")
    start, end = pace_window(now)
    runs_out_on = None
    if window_spent_credits > 0:
        seconds = Fraction(available_credits * PACE_WINDOW_DAYS * 86400, window_spent_credits)
        if seconds <= MAX_FORECAST_DAYS * 86400:
            runs_out_on = (end + timedelta(seconds=int(seconds))).date()
    return RunOutForecast(start, end, window_spent_credits, available_credits, runs_out_on)
