"""The bounce webhook's contract: signature check and body validation (no web framework here).

Endpoint: `POST /api/v1/events/bounces/<team>` (team name or id), signed with *that team's* secret
(core.bounces.webhook_secrets; `tributary bounces webhook-secret TEAM`). An event can only match a
send of that team.

Authentication: `X-Tributary-Timestamp: <unix seconds>` and
`X-Tributary-Signature: sha256=<hex HMAC-SHA256(team secret, "<timestamp>." + raw body)>`. A
timestamp more than the tolerance away from now is refused, so a captured request cannot be
replayed later (and a replay within it is the same bounce: intake dedupes it).

Body: one JSON object, or a list of them, each
`{"recipient": str, "message_id": str|null, "token": str|null, "type": "hard"|"soft",
"diagnostic": str|null, "status": "5.1.1"|null}`. `message_id` is the Message-ID of our send;
`token` the VERP token of its envelope sender (`bounces+<token>@...`) when the service reports the
return path. An event with neither matches nothing. Each item is validated on its own; errors name
the item and the field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from core.bounces.intake import BounceEvent
from core.bounces.parse import BounceClass, status_reason
from core.errors import InvalidInput, TributaryError
from storage.timeutil import as_utc, utcnow

SIGNATURE_HEADER = "X-Tributary-Signature"
TIMESTAMP_HEADER = "X-Tributary-Timestamp"
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 1000
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_MSGID = re.compile(r"^<?[^<>\s]{1,250}>?$")
_TOKEN = re.compile(r"^s\d{1,18}-[a-z2-7]{16}$")
_FIELDS = {"recipient", "message_id", "token", "type", "diagnostic", "status"}


class WebhookAuthError(TributaryError):
    pass


class WebhookBodyError(InvalidInput):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ItemResult:
    index: int
    event: BounceEvent | None
    error: WebhookBodyError | None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance_s: int,
    now: datetime | None = None,
) -> None:
    """Raises WebhookAuthError saying what is wrong (never what the right signature would be)."""
    if not timestamp or not signature:
        raise WebhookAuthError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookAuthError(f"{TIMESTAMP_HEADER}: not a Unix time in seconds") from None
    now_s = as_utc(now or utcnow()).timestamp()
    if abs(now_s - sent_at) > tolerance_s:
        raise WebhookAuthError(f"{TIMESTAMP_HEADER}: more than {tolerance_s} s from the server's clock (stale?)")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise WebhookAuthError(f"{SIGNATURE_HEADER}: signature does not match")


def parse_body(body: bytes) -> tuple[bool, list[ItemResult]]:
    """(was it a list, one result per item). A body that is not JSON at all raises WebhookBodyError."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookBodyError("body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookBodyError("body", f"not JSON ({exc})") from None
    if isinstance(data, dict):
        return False, [_item(0, data, "")]
    if isinstance(data, list):
        if not data:
            raise WebhookBodyError("body", "an empty list")
        if len(data) > MAX_EVENTS:
            raise WebhookBodyError("body", f"more than {MAX_EVENTS} events")
        return True, [_item(i, item, f"[{i}].") for i, item in enumerate(data)]
    raise WebhookBodyError("body", "must be a JSON object or a list of objects")


def _item(index: int, data: object, where: str) -> ItemResult:
    try:
        return ItemResult(index, _event(data, where), None)
    except WebhookBodyError as exc:
        return ItemResult(index, None, exc)


def _event(data: object, where: str) -> BounceEvent:
    if not isinstance(data, dict):
        raise WebhookBodyError(where.rstrip(".") or "body", "must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise WebhookBodyError(f"{where}{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(_FIELDS))})")
    recipient = data.get("recipient")
    if not isinstance(recipient, str) or not recipient.strip():
        raise WebhookBodyError(f"{where}recipient", "required, an email address")
    try:
        recipient = validate_email(recipient.strip(), check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise WebhookBodyError(f"{where}recipient", str(exc)) from None
    kind = data.get("type")
    if kind not in ("hard", "soft"):
        raise WebhookBodyError(f"{where}type", f"must be 'hard' or 'soft', got {kind!r}")
    message_id = data.get("message_id")
    if message_id is not None:
        if not isinstance(message_id, str) or not _MSGID.match(message_id.strip()):
            raise WebhookBodyError(f"{where}message_id", "must be a Message-ID such as <id@host>")
        message_id = message_id.strip()
        message_id = message_id if message_id.startswith("<") else f"<{message_id}>"
    token = data.get("token")
    if token is not None and (not isinstance(token, str) or not _TOKEN.match(token.strip().lower())):
        raise WebhookBodyError(f"{where}token", "must be a VERP token such as s42-abcdefghij234567")
    diagnostic = data.get("diagnostic")
    if diagnostic is not None and not isinstance(diagnostic, str):
        raise WebhookBodyError(f"{where}diagnostic", "must be a string")
    status = data.get("status")
    if status is not None and (not isinstance(status, str) or not _STATUS.match(status)):
        raise WebhookBodyError(f"{where}status", "must be an enhanced status code such as 5.1.1")
    return BounceEvent(
        recipient=recipient.lower(),
        message_id=message_id,
        bounce_class=BounceClass(kind),
        diagnostic=(diagnostic or None) and " ".join(diagnostic.split())[:500],
        status_code=status,
        reason=status_reason(status, diagnostic),
        verp_token=token.strip().lower() if token else None,
    )


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ItemResult",
    "WebhookAuthError",
    "WebhookBodyError",
    "parse_body",
    "sign",
    "verify_signature",
]
