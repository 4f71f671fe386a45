"""Pin the rate limiters' clock inside one window, so a test's requests never straddle a window
boundary (fixed windows are aligned to epoch minutes: four requests at 59.9 s would count 3 + 1)."""

from __future__ import annotations

import time

from core.services import Services

WINDOW_S = 60


def pin_rate_window(*services: Services) -> None:
    middle_s = (time.time() // WINDOW_S) * WINDOW_S + WINDOW_S / 2
    for one in services:
        one.rate_limits.clock_s = lambda: middle_s
