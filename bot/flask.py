"""The Slack endpoints of the product's Flask app, served through bolt's Flask adapter.

`/slack/events` takes commands, interactivity and events (one Request URL in the manifest);
`/slack/install` and `/slack/oauth_redirect` run the OAuth install in multi-workspace mode.
Without Slack settings the endpoints answer 503 (problem+json) saying which settings are missing.
Bodies are capped by the app's MAX_CONTENT_LENGTH while bolt reads them (413 past it).
"""

from __future__ import annotations

from flask import Blueprint, request
from slack_bolt.adapter.flask import SlackRequestHandler
from werkzeug.exceptions import Unauthorized

from bot.app import SlackNotConfigured, create_bolt_app
from core.errors import NotConfigured
from core.services import Services

MAX_TIMESTAMP_DIGITS = 12


def _timestamp_is_numeric(value: str | None) -> bool:
    return value is not None and value.isascii() and value.isdigit() and len(value) <= MAX_TIMESTAMP_DIGITS


def create_slack_blueprint(services: Services) -> Blueprint:
    bp = Blueprint("slack", __name__)
    try:
        handler: SlackRequestHandler | None = SlackRequestHandler(create_bolt_app(services, services.settings))
        problem = None
    except SlackNotConfigured as exc:
        handler, problem = None, str(exc)

    def handle():
        if handler is None:
            raise NotConfigured(problem)  # the app's error handler answers 503, problem+json
        request.get_data()  # read under the app's body cap first: an oversized body is a 413, whatever it claims
        if request.method == "POST" and not _timestamp_is_numeric(request.headers.get("X-Slack-Request-Timestamp")):
            # bolt's verifier would int() it and fail with a 500; a request Slack did not sign is a 401.
            raise Unauthorized("X-Slack-Request-Timestamp: not a Unix time")
        return handler.handle(request)

    bp.add_url_rule("/slack/events", "events", handle, methods=["POST"])
    bp.add_url_rule("/slack/install", "install", handle, methods=["GET"])
    bp.add_url_rule("/slack/oauth_redirect", "oauth_redirect", handle, methods=["GET"])
    return bp
