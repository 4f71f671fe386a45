"""The REST API (v1) blueprint: `create_api_blueprint(services)`."""

from web.api.blueprint import create_api_blueprint

__all__ = ["create_api_blueprint"]
