"""A thread-safe token bucket: at most `rate_per_s` calls per second on average, bursts of `burst`.

Callers reserve a token under the lock (possibly going into debt) and sleep outside it, so waiters
are served in arrival order and the lock is never held while sleeping. Hand-rolled (40 lines)
rather than a library because tests need an injectable clock and sleep to check it by counting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.sources.base import SourceError


class RateLimitWaitTooLong(SourceError):
    outcome = "rate_limited"


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else max(1, int(rate_per_s))
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def try_acquire(self) -> bool:
        """Take a token if one is there now; never waits."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def acquire(self, max_wait_s: float) -> float:
        """Take a token, waiting for it if needed; returns the seconds waited. Raises (without taking
        a token) if the wait would exceed `max_wait_s`."""
        with self._lock:
            self._refill(self._clock())
            wait_s = max(0.0, (1 - self._tokens) / self.rate_per_s)
            if wait_s > max_wait_s:
                raise RateLimitWaitTooLong(f"rate limit: next slot in {wait_s:.2f}s exceeds {max_wait_s:.2f}s")
            self._tokens -= 1  # reserved: later callers queue behind this one
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s
