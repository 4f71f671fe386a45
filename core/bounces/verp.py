"""VERP: each send goes out with its own envelope sender, `<local>+<token>@<bounce domain>`.

A DSN is addressed to the envelope sender of the message that failed, so a bounce that names a
valid token proves which send it is about; a Message-ID alone proves nothing (anyone who received
the message can quote it). The token is `s<send id>-<mac>`, mac = the first 80 bits of
HMAC-SHA256(TRIBUTARY_VERP_KEY, "verp:<send id>") in lower-case base32: it cannot be made without
the key, and checking it needs no lookup. The one party besides us that sees a token is the
recipient's own mail system; what it could forge is checked again by the SMTP re-check
(core.bounces.refunds).

Rotation: `TRIBUTARY_VERP_KEY` may hold several keys separated by commas. The first signs new sends;
every one is accepted when a bounce is checked, so the bounces of sends made under an older key
still prove their send while it is listed (keep it at least as long as bounces can arrive, a few
days; then drop it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

MAC_CHARS = 16  # 80 bits of base32
MAX_TOKENS_SCANNED = 20  # distinct tokens looked at in one bounce (a bounce names one send)
SCAN_BYTES = 256 * 1024  # the bounce's own headers and the returned headers are near the start

_TOKEN = re.compile(rb"\+(s(\d{1,18})-([a-z2-7]{16}))@", re.IGNORECASE)


def verp_keys(keys: str) -> list[str]:
    """The keys a TRIBUTARY_VERP_KEY value holds, the signing key first."""
    return [k.strip() for k in keys.split(",") if k.strip()]


def verp_token(keys: str, send_id: int) -> str:
    """The token of a send, under the signing (first) key."""
    mac = hmac.new(verp_keys(keys)[0].encode(), f"verp:{send_id}".encode(), hashlib.sha256).digest()
    return f"s{send_id}-" + base64.b32encode(mac).decode("ascii").lower()[:MAC_CHARS]


def verp_address(key: str, send_id: int, bounce_address: str) -> str:
    """`bounces@example.com` -> `bounces+s42-<mac>@example.com`."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{verp_token(key, send_id)}@{domain}"


def proven_send_ids(keys: str, raw: bytes) -> set[int]:
    """Send ids whose valid token appears in the bounce (any header or returned header; a token
    is a secret, so where it appears does not matter). Invalid tokens are ignored."""
    found: set[int] = set()
    seen: set[bytes] = set()
    for match in _TOKEN.finditer(bytes(raw[:SCAN_BYTES])):
        token = match.group(1).lower()
        if token in seen:
            continue
        seen.add(token)
        if len(seen) > MAX_TOKENS_SCANNED:
            break
        send_id = int(match.group(2))
        if any(hmac.compare_digest(verp_token(key, send_id).encode(), token) for key in verp_keys(keys)):
            found.add(send_id)
    return found


def token_send_id(key: str, token: str) -> int | None:
    """The send a token (as a webhook event carries it) proves, or None when it is not valid."""
    ids = proven_send_ids(key, b"+" + token.strip().encode("ascii", "replace") + b"@")
    return next(iter(ids)) if len(ids) == 1 else None


__all__ = ["proven_send_ids", "token_send_id", "verp_address", "verp_token"]
