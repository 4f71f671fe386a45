"""Flask app factory (Flask's own pattern): configuration in, blueprints registered, app out."""

from __future__ import annotations

from apiflask import APIFlask
from flask import Flask

from bot.flask import slack_blueprint
from core.services import Services
from web.api import create_api_blueprint
from web.events import events_bp
from web.health import health_bp


def create_app(services: Services | None = None) -> Flask:
    # APIFlask is Flask plus the OpenAPI document of the REST API's blueprint; other blueprints keep
    # Flask's own error pages (json_errors=False) and stay out of the document.
    app = APIFlask(
        "tributary", title="Tributary API", version="1", spec_path="/api/v1/openapi.json", docs_path="/api/docs",
        json_errors=False,
    )
    app.extensions["tributary"] = services or Services.from_settings()
    app.register_blueprint(health_bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(slack_blueprint(app.extensions["tributary"]))
    app.register_blueprint(create_api_blueprint(app.extensions["tributary"]))
    return app


def services_of(app: Flask) -> Services:
    return app.extensions["tributary"]
