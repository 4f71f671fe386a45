"""Garbage-collector settings for a long-running worker.

CPython runs a collection every 700 net allocations of container objects, and a full one whenever the
objects that survived grow by a quarter; each pass walks every tracked object of its generations. A
worker holds everything it imported (hundreds of thousands of objects, never garbage) and its jobs
allocate rows, futures and dataclasses by the million, so collections that find almost nothing took
a visible share of its CPU (BENCHMARKS.md). After start-up we move what is there to the permanent
generation (`gc.freeze`: never walked again) and collect the young less often. Reference counting
frees almost everything anyway; the collector is only for cycles, which it still finds.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000  # CPython's default: 700
GEN1_THRESHOLD = 20  # default 10
GEN2_THRESHOLD = 20  # default 10


def tune_gc_for_worker() -> None:
    """Call once, after imports and set-up, before the process starts its work."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
