"""The OpenAPI 3.1 document's API-wide parts APIFlask cannot infer: the two ways to present a key, the
Idempotency-Key header of charging calls, and problem+json for every error a call may answer."""

from __future__ import annotations

from flask import Flask

from web.api.problems import PROBLEM_MIME, PROBLEM_SCHEMA

SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key and body: the first response again, nothing charged again. "
    "Same key, other body: 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
RATE_HEADERS = {
    name: {"schema": {"type": "integer"}} for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
}
ERRORS = {
    "400": "Malformed request (e.g. a body that is not JSON)",
    "401": "Missing, unknown or revoked API key",
    "404": "Not found (or not this team's)",
    "413": "Body larger than the limit",
    "422": "Validation error (pointer names the field)",
    "429": "Rate limit exceeded (see Retry-After)",
    "500": "Internal error",
}
JOB_BODY = {
    "required": True,
    "description": "A CSV file with a header row (text/csv), or JSON rows keyed by column name.",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["rows"],
                "additionalProperties": False,
                "properties": {
                    "rows": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 10000,
                        "items": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    }
                },
            }
        },
    },
}
CHARGING_ERRORS = {
    "402": "Not enough credits",
    "409": "Idempotency-Key conflict, or the same data requested concurrently",
}


def document_api(app: Flask, prefix: str) -> None:
    app.config["AUTO_VALIDATION_ERROR_RESPONSE"] = False  # ours (problem+json) are added below

    @app.spec_processor
    def add_api_conventions(spec: dict) -> dict:
        spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        spec["components"].setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path, item in spec.get("paths", {}).items():
            if not path.startswith(prefix + "/"):
                continue
            for method, op in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                _document_operation(op, charging=method == "post")
                if path == prefix + "/enrichment/jobs" and method == "post":
                    op["requestBody"] = JOB_BODY
                    op["responses"]["415"] = {
                        "description": "Neither text/csv nor application/json",
                        "content": {PROBLEM_MIME: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
        return spec


def _document_operation(op: dict, *, charging: bool) -> None:
    op["security"] = [{"bearerKey": []}, {"headerKey": []}]
    responses = op.setdefault("responses", {})
    for code, resp in responses.items():
        if code.startswith("2"):
            resp.setdefault("headers", {}).update(RATE_HEADERS)
    errors = dict(ERRORS, **(CHARGING_ERRORS if charging else {}))
    # Errors an operation declares itself (e.g. 403) are problems too.
    errors.update({code: r["description"] for code, r in responses.items() if code[0] in "45" and code not in errors})
    for code, description in errors.items():
        responses[code] = {
            "description": description,
            "content": {PROBLEM_MIME: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    if charging:
        op.setdefault("parameters", []).append(IDEMPOTENCY_HEADER)
    if "requestBody" in op:
        op["requestBody"]["required"] = True
