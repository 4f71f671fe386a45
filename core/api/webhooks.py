"""Signed completion events for API enrichment jobs (Stripe's scheme).

`Tributary-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`, where the key is
the hex SHA-256 of the API key that created the job: the client can compute it from its key, and
the server signs with what it already stores (no new secret at rest). Delivery is retried with
exponential backoff (tenacity) until the endpoint answers 2xx or the attempts run out.

The URL is the caller's choice, so it is a server-side request forgery risk: by default an event is
only ever sent to a public address. The host is resolved once per attempt, every address it resolves
to must be public (not loopback, private, link-local, reserved or multicast), and the connection goes
to that resolved address (with the name kept for Host and TLS), so a name that re-resolves to an
internal address between the check and the request (DNS rebinding) reaches nothing. Test and
on-premise set-ups that post to internal hosts opt in with TRIBUTARY_API_WEBHOOK_ALLOW_PRIVATE.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
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
    allow_private: bool = False  # deliver to loopback/private addresses too (tests, on-premise receivers)


class WebhookTargetRefused(InvalidInput):
    """The webhook URL names or resolves to an address events may not be sent to."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    hostname: str
    address: str
    port: int
    path: str


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _refuse_literal(hostname: str, allow_private: bool) -> None:
    """A URL whose host is a non-public IP literal (or localhost) is refused when it is submitted."""
    if allow_private:
        return
    if hostname.lower().rstrip(".") == "localhost" or hostname.lower().endswith(".localhost"):
        raise WebhookTargetRefused("webhook_url: must be a public address, not localhost")
    try:
        public = _is_public(hostname)
    except ValueError:
        return  # a name: checked again, resolved, at every delivery attempt
    if not public:
        raise WebhookTargetRefused(f"webhook_url: {hostname} is not a public address")


def resolve_target(url: str, allow_private: bool) -> _Target:
    """Where one delivery attempt connects: a resolved address every answer of which is allowed."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    _refuse_literal(hostname, allow_private)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookTargetRefused(f"webhook_url: {hostname} does not resolve ({exc.strerror or exc})") from exc
    addresses = [info[4][0] for info in infos]
    if not allow_private and not all(_is_public(a) for a in addresses):
        raise WebhookTargetRefused(f"webhook_url: {hostname} resolves to a non-public address")
    path = parts.path or "/"
    return _Target(parts.scheme, hostname, addresses[0], port, path + (f"?{parts.query}" if parts.query else ""))


def _pool(target: _Target) -> urllib3.HTTPConnectionPool:
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address, target.port, retries=False, timeout=WEBHOOK_TIMEOUT_S,
            server_hostname=target.hostname, assert_hostname=target.hostname,
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, retries=False, timeout=WEBHOOK_TIMEOUT_S)


def check_webhook_url(url: str | None, *, allow_private: bool = False) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise InvalidInput(f"webhook_url: not a URL ({exc})") from exc
    if len(url) > MAX_WEBHOOK_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook_url: an http(s) URL of at most {MAX_WEBHOOK_URL_CHARS} characters")
    _refuse_literal(parts.hostname, allow_private)
    return url


def sign(key_hex: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key_hex.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def deliver(url: str, key_hex: str, event: dict, policy: WebhookPolicy) -> bool:
    """POST the event until a 2xx answer; True when acknowledged. Each attempt is signed afresh.

    A URL that names or resolves to a refused address is not retried: the answer will not change."""
    body = json.dumps(event, separators=(",", ":")).encode()
    refused: list[str] = []

    def attempt() -> bool:
        try:
            target = resolve_target(url, policy.allow_private)
        except WebhookTargetRefused as exc:
            refused.append(str(exc))
            return True  # stop retrying; reported below
        headers = {
            "Content-Type": "application/json", "Host": urlsplit(url).netloc.rsplit("@", 1)[-1],
            SIGNATURE_HEADER: sign(key_hex, int(time.time()), body),
        }
        try:
            with _pool(target) as pool:
                status = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False).status
        except urllib3.exceptions.HTTPError as exc:
            log.info("webhook %s: %s", target.hostname, exc)
            return False
        return 200 <= status < 300

    retrying = Retrying(
        retry=retry_if_result(lambda ok: not ok),
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s),
        retry_error_callback=lambda state: False,
    )
    ok = bool(retrying(attempt))
    if refused:
        log.warning("webhook not sent: %s", refused[0])
        return False
    return ok
