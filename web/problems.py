"""Errors as RFC 9457 problem details (`application/problem+json`), app-wide.

One handler for every blueprint: a `TributaryError` becomes a problem with the error's status, a
title from its class, its message as `detail`, and `field` / `row` / `column` / `pointer` when the
error carries them; an HTTP error (404, 405, 413, ...) a problem with the standard title; anything
else a 500 problem that says only that something went wrong (the traceback goes to the log, never
to the caller).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, json
from werkzeug.exceptions import HTTPException

from core.errors import TributaryError

PROBLEM_MIMETYPE = "application/problem+json"
# Problem types of our own errors are URNs named after the error class (README, "Errors").
PROBLEM_TYPE_PREFIX = "urn:tributary:problem:"
LOCATION_ATTRIBUTES = ("field", "row", "column", "pointer")


def problem_response(body: dict[str, Any]) -> Response:
    """The one place a problem body becomes a response (the app's and the API's problems alike)."""
    return Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_MIMETYPE)


def problem(
    status: int, title: str, detail: str | None = None, *, type_: str = "about:blank", **extra: Any
) -> Response:
    """A problem+json response; `extra` members with a None value are left out."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update({key: value for key, value in extra.items() if value is not None})
    return problem_response(body)


def _words(class_name: str) -> list[str]:
    return [word.lower() for word in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", class_name)]


def tributary_problem(exc: TributaryError) -> Response:
    words = _words(type(exc).__name__)
    location = {name: getattr(exc, name, None) for name in LOCATION_ATTRIBUTES}
    return problem(
        exc.http_status,
        " ".join(words).capitalize(),
        str(exc),
        type_=PROBLEM_TYPE_PREFIX + "-".join(words),
        **location,
    )


def http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = problem(status, HTTPStatus(status).phrase, exc.description)
    if status == HTTPStatus.METHOD_NOT_ALLOWED and exc.valid_methods:  # RFC 9110: 405 says what is allowed
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def unexpected_problem(exc: Exception) -> Response:
    current_app.logger.error("unhandled error", exc_info=exc)
    return problem(500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase, "an unexpected error occurred; it has been logged")


def register_problem_handlers(app: Flask) -> None:
    # Flask picks the handler of the nearest class in the exception's MRO.
    app.register_error_handler(TributaryError, tributary_problem)
    app.register_error_handler(HTTPException, http_problem)
    app.register_error_handler(Exception, unexpected_problem)
