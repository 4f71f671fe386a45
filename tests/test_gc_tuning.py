"""The worker's collector settings (core/jobs/gc_tuning.py), each in a fresh interpreter so this test
process keeps CPython's defaults: start-up objects frozen, young collections rarer, and garbage
cycles still collected (the collector is tuned, not off)."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from core.jobs.gc_tuning import GEN0_THRESHOLD

_CHECK = textwrap.dedent(
    """
    import gc, weakref
    from core.jobs.gc_tuning import GEN0_THRESHOLD, tune_gc_for_worker

    before = gc.get_threshold()
    tune_gc_for_worker()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 1_000, gc.get_freeze_count()  # what the interpreter built so far
    assert gc.get_threshold()[0] == GEN0_THRESHOLD > before[0], (before, gc.get_threshold())

    class Node:
        pass

    freed = []
    for _ in range(3):  # cycles, unreachable: only the collector frees them
        a, b = Node(), Node()
        a.other, b.other = b, a
        weakref.finalize(a, freed.append, 1)
        del a, b
    junk = [[i] for i in range(GEN0_THRESHOLD * 2)]  # allocations past the threshold: a collection runs
    del junk
    assert len(freed) == 3, freed
    print("ok")
    """
)


def test_worker_gc_freezes_start_up_and_still_collects_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_worker_tunes_the_collector_right_before_it_runs_tasks(monkeypatch) -> None:
    """`tributary worker` (core.jobs.consumer.run_worker): tuned once everything is built."""
    from huey import MemoryHuey

    from core.jobs import consumer

    seen = []
    def run(self) -> None:
        seen.append((gc.get_freeze_count(), gc.get_threshold()))

    monkeypatch.setattr(consumer.DrainingConsumer, "run", run)
    defaults = gc.get_threshold()
    try:
        consumer.run_worker(SimpleNamespace(huey=MemoryHuey("gc-test")), workers=1, periodic=False)
    finally:
        gc.unfreeze()
        gc.set_threshold(*defaults)
    assert len(seen) == 1
    frozen, threshold = seen[0]
    assert frozen > 10_000 and threshold[0] == GEN0_THRESHOLD
