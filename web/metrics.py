"""`GET /metrics`: Prometheus metrics of this web process, plus queue depth and jobs/chunks in flight
read from the shared queue and database at scrape time."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.observability import install_ledger_counter, install_scrape_hook

metrics_bp = Blueprint("metrics", __name__)
_state: dict = {}
metrics_bp.record_once(lambda state: install_ledger_counter(state.app.extensions["tributary"].engine))


@metrics_bp.get("/metrics")
def metrics() -> Response:
    if "hook" not in _state:
        from core.jobs.tasks import Jobs

        services = current_app.extensions["tributary"]
        _state["hook"] = Jobs(services).enrichment.read_gauges
        install_scrape_hook(_state["hook"])
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
