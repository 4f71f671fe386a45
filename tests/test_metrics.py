"""`/metrics` on the web app and structured logs: Prometheus text with the job-engine metrics."""

from __future__ import annotations

import json
import logging
import uuid

from core.observability import JsonFormatter
from core.services import Services
from core.settings import Settings
from web.app import create_app


def test_metrics_endpoint_serves_job_engine_metrics(engine, db_url, tmp_path) -> None:
    settings = Settings(
        _env_file=None, database_url=db_url, huey_sqlite_path=str(tmp_path / "huey.db"),
        huey_name=f"tributary-test-{uuid.uuid4().hex[:12]}",
    )
    services = Services(settings=settings, engine=engine)
    app = create_app(services)
    transfers = 'tributary_ledger_operations_total{kind="transfer"}'
    before = _sample(app.test_client().get("/metrics").get_data(as_text=True), transfers)
    services.accounts.create_team("acme", plan="basic")  # the plan's allotment: a ledger transfer
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for name in (
        "tributary_enrich_rows_processed_total", "tributary_enrich_chunks_in_flight", "tributary_queue_depth",
        "tributary_enrich_jobs_running", 'tributary_enrich_chunks{state="pending"}',
    ):
        assert name in text
    assert _sample(text, transfers) > before


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_json_log_lines_carry_job_and_chunk_ids() -> None:
    record = logging.LogRecord("core.enrichment.chunks", logging.INFO, __file__, 1, "chunk done", None, None)
    record.job_id, record.chunk_id = 7, 42
    line = json.loads(JsonFormatter().format(record))
    assert line["job_id"] == 7 and line["chunk_id"] == 42 and line["message"] == "chunk done"
