"""SheetsQuota: a rolling minute per user and kind, shared safely by a job's threads."""

from __future__ import annotations

import threading

from sheets_addon.sheets_api import QUOTA_WINDOW_S, SheetsQuota
from tests.google.sheets_server import FakeClock


def test_the_61st_request_of_a_minute_waits_for_the_first_to_age_out() -> None:
    clock = FakeClock()
    quota = SheetsQuota(60, 60, clock=clock.time, sleep=clock.sleep)
    assert [quota.acquire("ada", "write") for _ in range(60)] == [0.0] * 60
    clock.sleep(10)
    assert quota.acquire("ada", "write") == QUOTA_WINDOW_S - 10
    assert quota.sent_in_window("ada", "write") == 1  # the first 60 aged out while it waited


def test_users_and_kinds_have_separate_budgets() -> None:
    clock = FakeClock()
    quota = SheetsQuota(2, 3, clock=clock.time, sleep=clock.sleep)
    for _ in range(2):
        quota.acquire("ada", "read")
    for _ in range(3):
        quota.acquire("ada", "write")
    for _ in range(2):
        quota.acquire("bob", "read")
    assert clock.slept == []
    quota.acquire("bob", "read")
    assert clock.slept == [QUOTA_WINDOW_S]


def test_threads_never_exceed_the_budget_in_any_minute() -> None:
    clock = FakeClock()
    quota = SheetsQuota(10, 10, clock=clock.time, sleep=clock.sleep)
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            quota.acquire("ada", "write")
            with lock:
                granted.append(clock.time())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 90
    # Each grant is stamped at or after the clock value the quota counted it at, so a window of
    # the stamps that holds more than the limit would be a real breach.
    granted.sort()
    for i, start in enumerate(granted):
        in_window = [t for t in granted[i:] if t < start + QUOTA_WINDOW_S]
        assert len(in_window) <= 10, (start, in_window)
