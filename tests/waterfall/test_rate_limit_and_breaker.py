"""The token bucket and the circuit breaker on a fake clock: behaviour checked by counting."""

from __future__ import annotations

import threading

import pytest

from core.sources.circuit_breaker import CircuitBreaker, CircuitOpen, CircuitState
from core.sources.rate_limit import RateLimitWaitTooLong, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, burst=5, clock=clock)
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.2  # one token's worth
    assert [bucket.try_acquire() for _ in range(2)] == [True, False]
    clock.now += 10  # idle time never banks more than the burst
    assert sum(bucket.try_acquire() for _ in range(20)) == 5


def test_acquire_reserves_in_order_and_asks_to_wait_the_deficit() -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    bucket = TokenBucket(10, burst=1, clock=clock, sleep=sleeps.append)
    bucket.acquire(max_wait_s=1)
    bucket.acquire(max_wait_s=1)
    bucket.acquire(max_wait_s=1)
    assert sleeps == pytest.approx([0.1, 0.2])  # the second waits one slot, the third two
    with pytest.raises(RateLimitWaitTooLong):
        bucket.acquire(max_wait_s=0.25)  # would be the fourth slot: 0.3 s away
    clock.now += 0.2
    assert bucket.try_acquire() is False  # the refused call took no token: the debt is just repaid
    clock.now += 0.1
    assert bucket.try_acquire() is True


def test_bucket_is_thread_safe_never_handing_out_more_than_it_has() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, burst=100, clock=clock)
    granted = []
    lock = threading.Lock()

    def grab() -> None:
        for _ in range(50):
            ok = bucket.try_acquire()
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 100


def test_breaker_counts_only_consecutive_failures() -> None:
    breaker = CircuitBreaker("v", failure_threshold=3, cooldown_s=10, clock=FakeClock())
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # resets the count
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == CircuitState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == CircuitState.OPEN


def test_half_open_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("v", failure_threshold=1, cooldown_s=10, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now = 10
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpen, match="trial"):
        breaker.before_call()
    breaker.record_success()
    assert breaker.state == CircuitState.CLOSED
    breaker.before_call()
