"""A circuit breaker: after `failure_threshold` consecutive failed calls the circuit opens and calls
fail fast; after `cooldown_s` one trial call is let through (half-open): success closes the circuit,
failure opens it for another cool-down. Thread-safe; the clock is injectable so tests need no sleeps
(the reason it is hand-rolled: pybreaker and circuitbreaker read the wall clock themselves).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from core.sources.base import SourceError


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(SourceError):
    outcome = "circuit_open"


class CircuitBreaker:
    def __init__(
        self, name: str, *, failure_threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_threshold < 1 or cooldown_s < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s >= 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state == CircuitState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                return CircuitState.HALF_OPEN
            return self._state

    def before_call(self) -> None:
        """Raises CircuitOpen unless a call may go ahead now."""
        with self._lock:
            if self._state == CircuitState.CLOSED:
                return
            if self._state == CircuitState.OPEN:
                remaining = self.cooldown_s - (self._clock() - self._opened_at)
                if remaining > 0:
                    raise CircuitOpen(f"{self.name}: circuit open after repeated failures; retry in {remaining:.0f}s")
                self._state = CircuitState.HALF_OPEN
            if self._trial_in_flight:
                raise CircuitOpen(f"{self.name}: circuit half-open, a trial call is already in flight")
            self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
            self._trial_in_flight = False
