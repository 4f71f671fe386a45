"""`/healthz`: is the database reachable and migrated to the latest revision?"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from storage.migrate import current_revision, head_revision

health_bp = Blueprint("health", __name__)


@health_bp.get("/healthz")
def healthz():
    services = current_app.extensions["tributary"]
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(services.engine)
    except Exception as exc:  # any database failure means unhealthy, and says why
        return jsonify(status="error", database="unreachable", detail=str(exc).splitlines()[0]), 503
    head = head_revision()
    if revision != head:
        return jsonify(status="error", database="not migrated", revision=revision, expected=head), 503
    return jsonify(status="ok", database="ok", revision=revision)
