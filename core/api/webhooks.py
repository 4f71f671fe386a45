"""Signed completion events for API enrichment jobs (Stripe's scheme).

`Tributary-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`, where the key is
the hex SHA-256 of the API key that created the job: the client can compute it from its key, and
the server signs with what it already stores (no new secret at rest). Delivery is retried with
exponential backoff (tenacity) until the endpoint answers 2xx or the attempts run out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from core.errors import InvalidInput

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Tributary-Signature"
MAX_WEBHOOK_URL_CHARS = 2048
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WebhookPolicy:
    max_attempts: int = 8
    backoff_s: float = 1.0  # first wait; doubles up to max_backoff_s
    max_backoff_s: float = 300.0


def check_webhook_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if len(url) > MAX_WEBHOOK_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook_url: an http(s) URL of at most {MAX_WEBHOOK_URL_CHARS} characters")
    return url


def sign(key_hex: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key_hex.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def deliver(
    url: str, key_hex: str, event: dict, policy: WebhookPolicy, http: urllib3.PoolManager | None = None
) -> bool:
    """POST the event until a 2xx answer; True when acknowledged. Each attempt is signed afresh."""
    http = http or urllib3.PoolManager(retries=False, timeout=WEBHOOK_TIMEOUT_S)
    body = json.dumps(event, separators=(",", ":")).encode()

    def attempt() -> bool:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(key_hex, int(time.time()), body)}
        try:
            status = http.request("POST", url, body=body, headers=headers).status
        except urllib3.exceptions.HTTPError as exc:
            log.info("webhook %s: %s", urlsplit(url).hostname, exc)
            return False
        return 200 <= status < 300

    retrying = Retrying(
        retry=retry_if_result(lambda ok: not ok),
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s),
        retry_error_callback=lambda state: False,
    )
    return bool(retrying(attempt))
