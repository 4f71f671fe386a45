"""Metrics endpoint for a worker process and structured (JSON-lines) logs, with job and chunk ids.

(Named observability, not logging, so that `import logging` elsewhere is never shadowed.)"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event

from core import metrics

# Fields a record may carry through `extra=` that belong in a structured line.
CONTEXT_FIELDS = ("job_id", "chunk_id", "chunk_index", "team_id", "chunks")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _ScrapeHook(Collector):
    """Reads the gauges that come from shared state (queue depth, chunks by state) at scrape time."""

    def __init__(self, refresh: Callable[[], None]) -> None:
        self.refresh = refresh

    def collect(self):
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - a scrape must answer even when the database does not
            logging.getLogger(__name__).warning("metrics: could not read queue and job gauges", exc_info=True)
        for gauge in metrics.SCRAPE_TIME_GAUGES:
            yield from gauge.collect()


_LEDGER_TABLES = {"ledger_transfer": "transfer", "ledger_hold": "hold"}


def install_ledger_counter(engine: Engine) -> None:
    """Count ledger writes (transfers, holds) at the database driver, so every path of the ledger
    (its precompiled fast path too) is counted without the ledger knowing about metrics."""
    if getattr(engine, "_tributary_ledger_counter", False):
        return

    @event.listens_for(engine, "after_cursor_execute")
    def _count(conn, cursor, statement: str, parameters, context, executemany: bool) -> None:
        if not statement.startswith("INSERT INTO ledger_"):
            return
        table = statement[len("INSERT INTO ") :].split(" ", 1)[0].strip('"')
        kind = _LEDGER_TABLES.get(table)
        if kind is not None:
            rows = len(parameters) if executemany and isinstance(parameters, list | tuple) else 1
            metrics.LEDGER_OPERATIONS.labels(kind=kind).inc(rows)

    engine._tributary_ledger_counter = True  # type: ignore[attr-defined]


_hook: list[_ScrapeHook] = []  # one per process: the registry refuses two collectors of the same gauges


def install_scrape_hook(refresh: Callable[[], None]) -> None:
    """Read the shared-state gauges with `refresh` at each scrape (the latest app's services win)."""
    if _hook:
        _hook[0].refresh = refresh
        return
    _hook.append(_ScrapeHook(refresh))
    REGISTRY.register(_hook[0])


def serve_metrics(port: int, refresh: Callable[[], None] | None = None, addr: str = "0.0.0.0") -> None:
    if refresh is not None:
        install_scrape_hook(refresh)
    start_http_server(port, addr=addr)


__all__ = ["JsonFormatter", "configure_logging", "install_scrape_hook", "serve_metrics"]
