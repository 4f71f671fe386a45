"""REST API v1: a thin APIFlask blueprint over core/api. Parse (APIFlask + pydantic), authenticate the
key, count it against the plan's rate, call one core service, render `{data, meta}`; every error is
RFC 9457 problem+json (web/api/problems.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apiflask import APIBlueprint
from apiflask.exceptions import HTTPError
from flask import Response, g, json, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from werkzeug.exceptions import HTTPException

from core.api.account import UsageFilter
from core.api.idempotency import request_hash
from core.api.service import ApiService
from core.errors import TributaryError
from core.services import Services
from storage.models.enums import Category, Feature
from web.api import render
from web.api.contacts import add_contact_routes
from web.api.jobs import CREATE_ENDPOINT, add_job_routes, body_limit
from web.api.problems import error_problem_body, pointer_of, problem
from web.api.schemas import (
    BulkMatchIn,
    BulkMatchOut,
    CreditsOut,
    MatchIn,
    MatchOut,
    UsageOut,
    UsageQuery,
    VerifyIn,
    VerifyOut,
)
from web.api.spec import document_api
from web.problems import problem_response

API_PREFIX = "/api/v1"
# JSON bodies: 100 people of at most a few KB each; anything larger is refused unread.
MAX_API_BODY_BYTES = 1024 * 1024
log = logging.getLogger("tributary.api")
_HTTP_SLUGS = {400: "malformed-request", 404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _presented_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("X-Api-Key")


def _rate_headers(response: Response) -> Response:
    decision = g.get("api_rate")
    if decision is not None:
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(decision.reset_s)
        response.headers["RateLimit-Policy"] = f'{decision.limit};w=60'
    return response


def _http_problem(exc: HTTPException) -> Response:
    code = exc.code or 500
    detail = exc.description or exc.name
    if code == 400:
        detail = "the body is not valid JSON" if request.is_json or request.data else detail
    response = problem(code, _HTTP_SLUGS.get(code, "http-error"), exc.name, detail)
    if code == 405 and exc.get_headers():
        response.headers["Allow"] = dict(exc.get_headers()).get("Allow", "")
    return response


def _validation_problem(exc: HTTPError) -> Response:
    cause = exc.__cause__
    if isinstance(cause, PydanticValidationError):
        errors = [{"pointer": pointer_of(e["loc"]), "detail": e["msg"]} for e in cause.errors()]
    else:
        errors = [{"pointer": "", "detail": str(exc.detail or exc.message)}]
    first = errors[0]
    detail = f"{first['pointer'] or 'body'}: {first['detail']}"
    return problem(422, "validation-error", "Request validation failed", detail, first["pointer"], errors=errors)


def _register_errors(bp: APIBlueprint) -> None:
    @bp.errorhandler(TributaryError)
    def core_error(exc: TributaryError):
        return problem_response(error_problem_body(exc))

    @bp.errorhandler(HTTPError)
    def apiflask_error(exc: HTTPError):
        if exc.status_code == 422:
            return _validation_problem(exc)
        return problem(exc.status_code, "http-error", str(exc.message), str(exc.detail or exc.message))

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_problem(exc)
        log.exception("api: unexpected error on %s %s", request.method, request.path)
        return problem(500, "internal-error", "Internal error", "an unexpected error occurred; it was logged")


def _guard(api: ApiService) -> Callable[[], Response | None]:
    def before() -> Response | None:
        limit = body_limit() if request.endpoint == CREATE_ENDPOINT else MAX_API_BODY_BYTES
        length = request.content_length
        if length is not None and length > limit:
            return problem(413, "body-too-large", "Payload Too Large", f"body: larger than {limit} bytes")
        request.max_content_length = limit  # a chunked body is cut off at the limit while read
        caller = api.caller(_presented_key())
        decision = api.limiter.check(
            f"api-key:{caller.key_id}", limit=caller.requests_per_minute, window_s=60, exact=False
        )
        g.api_caller, g.api_rate = caller, decision
        log.info("api %s %s key=%s team=%s", request.method, request.path, caller.key_prefix, caller.team.id)
        if not decision.allowed:
            response = problem(
                429, "rate-limited", "Too many requests",
                f"more than {decision.limit} requests per minute for key {caller.key_prefix}",
            )
            response.headers["Retry-After"] = str(decision.reset_s)
            return response
        return None

    return before


def _charging(api: ApiService, body: BaseModel, run: Callable[[], dict], status: int = 200) -> Response:
    """Run a charging call (or any POST) once per Idempotency-Key (core/api/idempotency.py)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _json(run(), status)
    caller = g.api_caller
    digest = request_hash(request.method, request.path, body.model_dump(mode="json"))
    claim = api.idempotency.claim(caller.key_id, key, digest)
    if claim.replay is not None:
        response = _json(claim.replay.body, claim.replay.status)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        payload = run()
    except BaseException:
        api.idempotency.complete(claim.record_id, 500, {})  # released: a retry may run it again
        raise
    api.idempotency.complete(claim.record_id, status, payload)
    return _json(payload, status)


def create_api_blueprint(services: Services) -> APIBlueprint:
    api = services.api
    bp = APIBlueprint("api_v1", __name__, url_prefix=API_PREFIX, tag="API v1")
    bp.before_request(_guard(api))
    bp.after_request(_rate_headers)
    _register_errors(bp)
    bp.record_once(lambda state: document_api(state.app, API_PREFIX))

    @bp.post("/people/match")
    @bp.input(MatchIn, arg_name="body")
    @bp.output(MatchOut)
    def people_match(body: MatchIn):
        """Match one person and reveal their email and/or mobile (charging: Idempotency-Key accepted)."""

        def run() -> dict:
            answer = api.match(g.api_caller, render.match_query(body))
            return {"data": render.match_data(answer), "meta": {"credits_charged": answer.credits_charged}}

        return _charging(api, body, run)

    @bp.post("/people/bulk_match")
    @bp.input(BulkMatchIn, arg_name="body")
    @bp.output(BulkMatchOut)
    def people_bulk_match(body: BulkMatchIn):
        """Match up to 100 people: one result per input, in order; failures itemised."""

        def run() -> dict:
            return render.bulk(api.bulk_match(g.api_caller, [render.match_query(p) for p in body.people]))

        return _charging(api, body, run)

    @bp.post("/emails/verify")
    @bp.input(VerifyIn, arg_name="body")
    @bp.output(VerifyOut)
    def emails_verify(body: VerifyIn):
        """Verify up to 100 addresses: status, reasons, score, evidence. Each definitive answer (any
        status but unknown) costs the plan's verification price (default 1); unknown is free."""
        return _charging(api, body, lambda: render.verification(api.verify(g.api_caller, list(body.emails))))

    @bp.get("/credits")
    @bp.output(CreditsOut)
    def credits():
        """The team's credits: available, held, live lots with their expiries, the cycle's end."""
        return _json(render.credits(api.credits(g.api_caller)))

    @bp.get("/usage")
    @bp.input(UsageQuery, location="query", arg_name="query")
    @bp.output(UsageOut)
    @bp.doc(responses={403: "Not permitted (another member's usage, for a member's key)"})
    def usage(query: UsageQuery):
        """The usage log, newest first, a page at a time (`meta.next_cursor`). An admin's key sees the
        team's; a member's key its member's own."""
        flt = UsageFilter(
            since=query.since,
            until=query.until,
            member=query.member,
            feature=Feature(query.feature) if query.feature else None,
            category=Category(query.category) if query.category else None,
            include_refunds=query.include_refunds,
            limit=query.limit,
            cursor=query.cursor,
        )
        return _json(render.usage(api.usage(g.api_caller, flt)))

    add_job_routes(bp, api)
    add_contact_routes(bp, api, lambda body, run, status=200: _charging(api, body, run, status))
    return bp
