"""`POST /api/v1/events/bounces/<team>`: bounces reported by a team's email-sending service, signed
with that team's own secret (see core.bounces.webhook).

401 for a missing, wrong or stale signature, an unknown team or a team without a secret (one
message for all: no oracle for team names); the body is not stored (anyone can send junk, and a
sender with the right secret retries on any non-2xx, so nothing genuine is lost). 400 naming the
field for a body that is authenticated but wrong, which is kept as an unparseable intake row. 503
while TRIBUTARY_SECRET_KEYS (which decrypts the team secrets) is not configured, and 413 (read no
further) for a body over MAX_BODY_BYTES, chunked or not; both as problem+json from the app's error
handler. Items of a list are taken one by one: the good ones are processed even when another is refused.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, jsonify, request

from core.bounces.intake import IntakeSource
from core.bounces.webhook import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAuthError,
    WebhookBodyError,
    parse_body,
    verify_signature,
)
from core.errors import NotConfigured, TributaryError
from core.secrets import SecretsError
from core.services import Services
from web.problems import PROBLEM_TYPE_PREFIX, problem

AUTH_PROBLEM = PROBLEM_TYPE_PREFIX + "webhook-auth-error"
BODY_PROBLEM = PROBLEM_TYPE_PREFIX + "webhook-body-error"


def create_events_blueprint(services: Services) -> Blueprint:
    bp = Blueprint("events", __name__)
    bp.add_url_rule(
        "/api/v1/events/bounces/<team_ref>", "bounces", lambda team_ref: bounce_events(services, team_ref),
        methods=["POST"],
    )
    return bp


def _team_secret(services: Services, team_ref: str) -> tuple[int | None, str]:
    """(team id, its secret); for an unknown team or one without a secret, a random secret that
    no signature matches, so every failure reads the same."""
    try:
        team = services.accounts.team(int(team_ref) if team_ref.isdigit() else team_ref)
        found = services.webhook_secrets.secret_of(team.id)
    except SecretsError:
        raise
    except TributaryError:
        found = None
    if found is None:
        return None, secrets.token_urlsafe(32)
    return found.team_id, found.secret


def bounce_events(services: Services, team_ref: str):
    # Tighter than the app-wide cap, and enforced while reading (chunked bodies too): 413 before
    # more than this is read, and before anything is authenticated.
    request.max_content_length = min(MAX_BODY_BYTES, request.max_content_length or MAX_BODY_BYTES)
    try:
        team_id, secret = _team_secret(services, team_ref[:100])
    except SecretsError as exc:
        current_app.logger.error("bounce webhook: %s", exc)
        raise NotConfigured("the bounce webhook is not configured (TRIBUTARY_SECRET_KEYS)") from None
    body = request.get_data(cache=False)
    try:
        verify_signature(
            secret,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
            tolerance_s=services.settings.bounce_webhook_tolerance_s,
        )
    except WebhookAuthError as exc:
        current_app.logger.warning("bounce webhook refused from %s: %s", request.remote_addr, exc)
        return problem(401, "Unauthorized", str(exc), type_=AUTH_PROBLEM)
    if team_id is None:  # unreachable in practice: a random secret matched
        return problem(401, "Unauthorized", f"{SIGNATURE_HEADER}: signature does not match", type_=AUTH_PROBLEM)
    intake = services.bounce_intake
    try:
        is_list, items = parse_body(body)
    except WebhookBodyError as exc:
        kept = intake.record_unparseable(body, source=IntakeSource.WEBHOOK, error_code="bad_body", error=str(exc))
        return problem(400, "Bad event", str(exc), type_=BODY_PROBLEM, field=exc.field, intake_id=kept.intake_id)
    results = []
    failed = False
    for item in items:
        if item.error is not None:
            failed = True
            kept = intake.record_unparseable(
                body if not is_list else f"item {item.index} of ".encode() + body,
                source=IntakeSource.WEBHOOK,
                error_code="bad_event",
                error=str(item.error),
            )
            results.append({"index": item.index, "error": str(item.error), "field": item.error.field,
                            "intake_id": kept.intake_id})
            continue
        stored = intake.ingest_event(item.event, body, team_id=team_id)
        outcome = stored.outcomes[0] if stored.outcomes else None
        results.append(
            {
                "index": item.index,
                "intake_id": stored.intake_id,
                "bounce_id": stored.bounce_ids[0] if stored.bounce_ids else None,
                "matched": bool(outcome and outcome.matched),
                "refund": outcome.decision.outcome.value if outcome and outcome.decision else None,
                "pending": bool(outcome and outcome.pending),
            }
        )
    if not is_list:
        result = results[0]
        if "error" in result:
            return problem(400, "Bad event", result["error"], type_=BODY_PROBLEM, field=result["field"],
                           intake_id=result["intake_id"])
        return jsonify(result), 200
    return jsonify(results=results), 400 if failed else 200
