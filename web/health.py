"""`/healthz`: is the database reachable and migrated to the latest revision?

Anyone can call it, so a failure says only what failed ("database unreachable"); the driver's
message, which names the database host and port, goes to the log.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from core.services import Services
from storage.migrate import current_revision, head_revision

log = logging.getLogger(__name__)


def create_health_blueprint(services: Services) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz():
        try:
            with services.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = current_revision(services.engine)
        except Exception as exc:  # any database failure means unhealthy
            log.warning("healthz: database unreachable: %s", exc)
            return jsonify(status="error", database="unreachable", detail="database unreachable"), 503
        head = head_revision()
        if revision != head:
            return jsonify(status="error", database="not migrated", revision=revision, expected=head), 503
        return jsonify(status="ok", database="ok", revision=revision)

    return bp
