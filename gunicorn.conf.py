"""gunicorn settings for the web app (gunicorn reads ./gunicorn.conf.py by itself; the Procfile's
command-line flags, e.g. --workers/--threads, take precedence over what is set here).

Threads, not processes, carry the concurrency (gthread): a Slack ack is ~4 ms of CPU and mostly
waiting on sockets. The work behind each ack (lookups, data requests) runs on the same worker's
lazy-listener threads, so acks and that work share one GIL; see post_worker_init.
"""

from __future__ import annotations

import sys

# Request bodies: gunicorn itself has no cap on them; the app refuses any body over
# TRIBUTARY_MAX_BODY_BYTES with 413 while reading it, chunked ones included (web/limits.py), and
# gunicorn discards what the client still sends. Request lines and headers keep gunicorn's limits.

worker_class = "gthread"
workers = 2
threads = 16

# CPython makes a thread that wants the GIL wait up to the switch interval (5 ms by default) before
# the holder must let go; an ack takes the GIL again after each socket wait, so behind busy lookup
# threads it queued for 5 ms many times over. 1 ms cut the benchmark's ack p99 (BENCHMARKS.md).
GIL_SWITCH_INTERVAL_S = 0.001


def on_starting(server) -> None:
    """Refuse to serve with default or missing keys (core.secrets), before any worker forks."""
    from core.secrets import InsecureConfiguration, require_production_keys
    from core.settings import get_settings

    try:
        require_production_keys(get_settings(), "gunicorn (tributary web)")
    except InsecureConfiguration as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


def post_worker_init(worker) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
