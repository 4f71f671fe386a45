"""RFC 9457 problem details for the API: a machine-readable `type`, the status, and the JSON pointer
of the offending field. The API's status table lives here (InvalidInput is 422 here, 400 app-wide);
the response is made by the app's one renderer (web.problems.problem_response)."""

from __future__ import annotations

import re

from flask import Response

from core.accounts import AlreadyExists
from core.api.idempotency import IdempotencyKeyConflict
from core.api.jobs import JobNotFinished, UploadTooLarge
from core.api.keys import InvalidApiKey
from core.api.people import AmbiguousMatch
from core.data_requests import BudgetExhausted, RequestInProgress
from core.errors import AccessDenied, InvalidInput, NotFound, TributaryError
from core.ledger import IdempotencyConflict, InsufficientCredits
from core.team_contacts.export import SpendCapExceeded
from core.team_contacts.rules import NotPermitted
from web.problems import PROBLEM_MIMETYPE, PROBLEM_TYPE_PREFIX, problem_response

# One media type and one type namespace for every problem the app answers (web/problems.py).
PROBLEM_MIME = PROBLEM_MIMETYPE
TYPE_BASE = PROBLEM_TYPE_PREFIX
# "field: message" (core's convention for InvalidInput) names the field at the start.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*):\s")

# (exception class, HTTP status, type slug, title); the first that matches wins.
_MAPPING: tuple[tuple[type[TributaryError], int, str, str], ...] = (
    (InvalidApiKey, 401, "unauthorized", "Missing or invalid API key"),
    (NotFound, 404, "not-found", "Not found"),
    (NotPermitted, 403, "forbidden", "Not permitted"),
    (AccessDenied, 403, "forbidden", "Not permitted"),
    (AlreadyExists, 409, "already-exists", "Already exists"),
    (SpendCapExceeded, 402, "spend-cap-exceeded", "Over the spend cap"),
    (InsufficientCredits, 402, "insufficient-credits", "Not enough credits"),
    (BudgetExhausted, 402, "insufficient-credits", "Not enough credits"),
    (IdempotencyKeyConflict, 409, "idempotency-conflict", "Idempotency key conflict"),
    (IdempotencyConflict, 409, "idempotency-conflict", "Idempotency key conflict"),
    (UploadTooLarge, 413, "body-too-large", "Payload Too Large"),
    (JobNotFinished, 409, "job-not-finished", "The job has not finished"),
    (RequestInProgress, 409, "in-progress", "Another request for the same data is running"),
    (AmbiguousMatch, 422, "ambiguous-match", "Several people match"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
)

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "pointer": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}


def problem_body(status: int, slug: str, title: str, detail: str, pointer: str | None = None, **extra) -> dict:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, "pointer": pointer}
    body.update(extra)
    return body


def problem(status: int, slug: str, title: str, detail: str, pointer: str | None = None, **extra) -> Response:
    return problem_response(problem_body(status, slug, title, detail, pointer, **extra))


def _slug(exc: TributaryError) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()


def _title(exc: TributaryError) -> str:
    return "Bad request" if exc.http_status == 400 else _slug(exc).replace("-", " ").capitalize()


def error_problem_body(exc: TributaryError, base_pointer: str = "") -> dict:
    """The problem a core error is, with the pointer of the field its message names."""
    # Unmapped errors keep the status their class declares (AccessDenied 403, RateLimited 429, ...).
    status, slug, title = exc.http_status, "bad-request" if exc.http_status == 400 else _slug(exc), _title(exc)
    for cls, st, sl, ti in _MAPPING:
        if isinstance(exc, cls):
            status, slug, title = st, sl, ti
            break
    detail = str(exc)
    pointer = None
    match = _FIELD_PREFIX.match(detail)
    if match and status == 422:
        pointer = base_pointer + "/" + match.group(1).replace(".", "/")
    return problem_body(status, slug, title, detail, pointer)


def pointer_of(loc: tuple | list, base: str = "") -> str:
    """A JSON pointer (RFC 6901) from a validation error's location."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return base + "".join("/" + p for p in parts)
