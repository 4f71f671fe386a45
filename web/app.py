"""Flask app factory (Flask's own pattern): configuration in, blueprints registered, app out."""

from __future__ import annotations

from flask import Flask

from bot.flask import slack_blueprint
from core.services import Services
from web.events import events_bp
from web.health import health_bp
from web.metrics import metrics_bp


def create_app(services: Services | None = None) -> Flask:
    app = Flask("tributary")
    app.extensions["tributary"] = services or Services.from_settings()
    app.register_blueprint(health_bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(slack_blueprint(app.extensions["tributary"]))
    return app


def services_of(app: Flask) -> Services:
    return app.extensions["tributary"]
