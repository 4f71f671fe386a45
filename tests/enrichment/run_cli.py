"""`tributary enrich ...` in a process of its own, for tests that interrupt it (SIGINT) mid-job.

    python -m tests.enrichment.run_cli enrich IN.csv -o OUT.csv --team T ...   (TRIBUTARY_DATABASE_URL set)

The real command line runs; only its lookups are slowed like a network's (tests.enrichment.world) and
each progress event is also printed as `progress N` on stdout, the event the test waits for.
"""

from __future__ import annotations

import signal

import cli.enrich
from cli.main import main
from core.enrichment.csv_enrich import CsvEnrichment
from core.services import Services
from tests.enrichment import world as w


class _Announcing(CsvEnrichment):
    def run(self, request, plan, job, *, resumed=False, on_progress=None):
        def announce(progress) -> None:
            if on_progress:
                on_progress(progress)
            print(f"progress {progress.done_rows}", flush=True)

        return super().run(request, plan, job, resumed=resumed, on_progress=announce)


def _services() -> Services:
    services = Services.from_settings()
    # Slow enough (12 people, 2 at a time: ~1 s) that the test's Ctrl-C lands mid-job on a busy machine.
    slow = w.services(services.engine, delay_s=0.15, workers=2, flush_rows=2)
    services.__dict__["enrichment_jobs"] = slow.jobs  # cached_property: the instance's value wins
    services.__dict__["csv_enrichment"] = _Announcing(slow.jobs)
    return services


if __name__ == "__main__":
    # A suite started in the background by a shell without job control inherits SIGINT ignored, and
    # Python then keeps it ignored: the Ctrl-C under test must reach this process whatever started it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    built = _services()
    cli.enrich.services = lambda: built
    main()
