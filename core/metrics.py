"""Prometheus metrics of one process (web app: `/metrics`; worker: `tributary worker --metrics-port`).

Counters and gauges live in the default registry of the process that updates them; each process is
scraped on its own (a gunicorn web process with several workers reports the one that answers)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

JOBS_SUBMITTED = Counter("tributary_enrich_jobs_submitted", "Enrichment jobs handed to the workers")
JOBS_FINISHED = Counter("tributary_enrich_jobs_finished", "Enrichment jobs whose last chunk was written")
CHUNKS_IN_FLIGHT = Gauge("tributary_enrich_chunks_in_flight", "Chunks this process is running now")
CHUNKS_FINISHED = Counter(
    "tributary_enrich_chunks_finished", "Chunk attempts by result (done, cancelled, released, lost, stale)", ["result"]
)
CHUNKS_EXPIRED = Counter("tributary_enrich_chunks_expired", "Chunks whose lease ran out (worker presumed dead)")
ROWS_PROCESSED = Counter("tributary_enrich_rows_processed", "Rows written by enrichment chunks (rate: rows/s)")
PROVIDER_CALLS = Counter("tributary_provider_calls", "HTTP calls to external data providers", ["provider", "status"])
PROVIDER_429 = Counter("tributary_provider_rate_limited", "HTTP 429 answers from data providers", ["provider"])
LEDGER_OPERATIONS = Counter(
    "tributary_ledger_operations", "Ledger rows written by this process (transfer, hold)", ["kind"]
)
# Read from shared state at scrape time (core.observability's scrape hook exposes them, fresh).
QUEUE_DEPTH = Gauge("tributary_queue_depth", "Tasks waiting on the job queue", registry=None)
JOBS_IN_FLIGHT = Gauge("tributary_enrich_jobs_running", "Enrichment jobs running", registry=None)
CHUNKS_QUEUED = Gauge("tributary_enrich_chunks", "Chunks by state", ["state"], registry=None)
SCRAPE_TIME_GAUGES = (QUEUE_DEPTH, JOBS_IN_FLIGHT, CHUNKS_QUEUED)

__all__ = [
    "CHUNKS_EXPIRED",
    "CHUNKS_FINISHED",
    "CHUNKS_IN_FLIGHT",
    "CHUNKS_QUEUED",
    "JOBS_FINISHED",
    "JOBS_IN_FLIGHT",
    "JOBS_SUBMITTED",
    "LEDGER_OPERATIONS",
    "PROVIDER_429",
    "PROVIDER_CALLS",
    "QUEUE_DEPTH",
    "ROWS_PROCESSED",
    "SCRAPE_TIME_GAUGES",
]
