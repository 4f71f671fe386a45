"""The one Flask app (Flask's app-factory pattern): services in, blueprints registered, app out.

Every blueprint is made by a factory that takes the services it needs (no module-level blueprints,
no reaching into `current_app` for them); errors of every blueprint become problem+json in one
place (web/problems.py); every request body is capped app-wide (`TRIBUTARY_MAX_BODY_BYTES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from apiflask import APIFlask
from flask import Blueprint, Flask

from bot.flask import create_slack_blueprint
from core.services import Services
from web.api import create_api_blueprint
from web.events import create_events_blueprint
from web.health import create_health_blueprint
from web.limits import CappedRequest
from web.metrics import create_metrics_blueprint
from web.problems import register_problem_handlers

BlueprintFactory = Callable[[Services], Blueprint]

# The front ends the app serves, each a factory over the services.
BLUEPRINT_FACTORIES: tuple[BlueprintFactory, ...] = (
    create_health_blueprint,
    create_events_blueprint,
    create_slack_blueprint,
    create_api_blueprint,
    create_metrics_blueprint,
)

_EXTENSION_KEY = "tributary"


def create_app(services: Services | None = None, *, extra_blueprints: Iterable[BlueprintFactory] = ()) -> Flask:
    services = services or Services.from_settings()
    # APIFlask is Flask plus the OpenAPI document of the REST API's blueprint; the other blueprints
    # stay out of the document. Errors of every blueprint are problem+json (web/problems.py).
    app = APIFlask(
        "tributary", title="Tributary API", version="1", spec_path="/api/v1/openapi.json", docs_path="/api/docs",
        json_errors=False,
    )
    # Enforced while the body is read, chunked bodies (no Content-Length) included (web/limits.py):
    # reading past it raises 413 instead of buffering the rest.
    app.request_class = CappedRequest
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.extensions[_EXTENSION_KEY] = services
    for factory in (*BLUEPRINT_FACTORIES, *extra_blueprints):
        app.register_blueprint(factory(services))
    register_problem_handlers(app)
    return app


def services_of(app: Flask) -> Services:
    """The services an app was built with (typed; the extension key stays private to this module)."""
    services = app.extensions.get(_EXTENSION_KEY)
    if not isinstance(services, Services):
        raise TypeError(f"app {app.name!r} was not built by web.app.create_app")
    return services
