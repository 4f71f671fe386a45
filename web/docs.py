"""The API docs page's assets (Swagger UI 5) served by the app itself, so /api/docs works offline.

APIFlask's docs page loads Swagger UI from a public CDN by default: behind a firewall, or on a
machine without Internet access, the page stays blank. The files come from the `swagger-ui-py`
package (Swagger UI 5, which renders OpenAPI 3.1) and are located without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Flask, abort, send_from_directory

from core.services import Services

ASSETS_URL = "/api/docs/assets"
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")


def assets_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: reinstall the project's dependencies")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def configure_docs(app: Flask) -> None:
    """Point APIFlask's docs page at the assets below instead of the CDN."""
    app.config["SWAGGER_UI_CSS"] = f"{ASSETS_URL}/swagger-ui.css"
    app.config["SWAGGER_UI_BUNDLE_JS"] = f"{ASSETS_URL}/swagger-ui-bundle.js"
    app.config["SWAGGER_UI_STANDALONE_PRESET_JS"] = f"{ASSETS_URL}/swagger-ui-standalone-preset.js"
    app.config["DOCS_FAVICON"] = f"{ASSETS_URL}/favicon-32x32.png"


def create_docs_blueprint(services: Services) -> Blueprint:
    folder = assets_dir()
    bp = Blueprint("docs_assets", __name__)

    @bp.get(f"{ASSETS_URL}/<name>")
    def asset(name: str):
        if name not in ASSETS:  # only the files the page uses; nothing else of the package
            abort(404)
        return send_from_directory(folder, name, max_age=24 * 3600)

    return bp
