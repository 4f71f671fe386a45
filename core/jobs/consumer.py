"""Running huey consumers: the `tributary worker` process, or a consumer inside another process.

In-process (embedded mode, `tributary serve`): worker and scheduler threads in the web process, no
signal handlers (only a process's main thread may set them, and the web server owns them there);
`stop()` finishes the running tasks and returns.
"""

from __future__ import annotations

import logging

from huey.consumer import Consumer

from core.enrichment.chunks import DRAINING
from core.jobs.gc_tuning import tune_gc_for_worker
from core.jobs.tasks import Jobs

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 30.0


class InProcessConsumer(Consumer):
    """A consumer whose threads run beside the host application's own."""

    def _set_signal_handlers(self) -> None:
        # The host process (web server, test runner) owns signal handling.
        pass

    def stop(self, graceful: bool = True) -> None:  # type: ignore[override]
        super().stop(graceful=graceful)


def start_in_process(jobs: Jobs, *, workers: int = 1, periodic: bool = True) -> InProcessConsumer:
    """Start worker and scheduler threads now; call `.stop()` on shutdown."""
    consumer = InProcessConsumer(
        jobs.huey,
        workers=workers,
        periodic=periodic,
        worker_type="thread",
        initial_delay=0.05,
        max_delay=1.0,
        check_worker_health=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        flush_locks=True,  # a lock left by a process that died (no TTL on SQLite storage)
    )
    consumer.start()
    log.info("in-process job consumer started (%s worker thread(s), periodic=%s)", workers, periodic)
    return consumer


class DrainingConsumer(Consumer):
    """SIGTERM (a deploy stopping the worker) is a graceful stop: running tasks finish, and an
    enrichment chunk releases itself at its next batch (core.enrichment.chunks.DRAINING) so another
    worker continues it. A second SIGTERM, or SIGINT, stops at once."""

    def _handle_signal(self, signum, frame) -> None:  # type: ignore[override]
        super()._handle_signal(signum, frame)
        if self._graceful:
            DRAINING.set()


def run_worker(jobs: Jobs, *, workers: int = 2, periodic: bool = True) -> None:
    """Run a consumer in the foreground until SIGTERM (drain) or SIGINT (the `worker` process)."""
    consumer = DrainingConsumer(
        jobs.huey,
        workers=workers,
        periodic=periodic,
        worker_type="thread",
        flush_locks=True,
        graceful_signal="TERM",
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    tune_gc_for_worker()  # everything is imported and built: never walked by the collector again
    consumer.run()


__all__ = ["InProcessConsumer", "run_worker", "start_in_process"]
