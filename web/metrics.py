"""`GET /metrics`: Prometheus metrics of this web process, plus queue depth and jobs/chunks in flight
read from the shared queue and database at scrape time."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.observability import install_ledger_counter, install_scrape_hook
from core.services import Services


def create_metrics_blueprint(services: Services) -> Blueprint:
    bp = Blueprint("metrics", __name__)
    bp.record_once(lambda _state: install_ledger_counter(services.engine))
    hooked: list[bool] = []

    def metrics() -> Response:
        if not hooked:  # the gauges read the queue and the database at scrape time
            from core.jobs.tasks import Jobs

            install_scrape_hook(Jobs(services).enrichment.read_gauges)
            hooked.append(True)
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    bp.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
    return bp
