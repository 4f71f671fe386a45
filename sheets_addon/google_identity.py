"""Who is calling the add-on's backend: a Google ID token verified into a GoogleUser, or refused.

google-auth's `id_token.verify_token` checks the signature against the certificates URL, the
expiry and the audience; it checks neither the issuer nor `email_verified`, so this module does.
Certificates are fetched over HTTP from the configured URL and cached per their Cache-Control
max-age (CacheControl, as google-auth's documentation recommends), so a busy backend does not fetch
them on every call. A token signed by a key the cached certificates do not hold (Google rotated its
keys before our cache expired) makes one fresh fetch, at most once per REFETCH_UNKNOWN_KID_S, so a
flood of forged key ids cannot turn into a flood of fetches.
"""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cachecontrol
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import id_token as google_id_token

from core.errors import NotConfigured, TributaryError

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# A Google ID token is ~1 KB; anything far larger is refused before it is parsed.
MAX_ID_TOKEN_CHARS = 8192
# Fetching the certificates: connect and read timeout.
CERTS_TIMEOUT_S = 10.0
# At most one early fetch of the certificates per this many seconds, for a key id they lack.
REFETCH_UNKNOWN_KID_S = 60.0


class GoogleIdentityError(TributaryError):
    """A missing, malformed, forged, expired or foreign ID token; the message never repeats the token."""

    http_status = 401


class GoogleCertificatesUnavailable(GoogleIdentityError):
    """Google's certificates could not be fetched: nobody can be verified right now (not the caller's fault)."""

    http_status = 503


@dataclass(frozen=True)
class GoogleUser:
    email: str
    subject: str
    hosted_domain: str | None
    name: str | None


def _cached_request() -> google.auth.transport.requests.Request:
    session = cachecontrol.CacheControl(requests.Session())
    return google.auth.transport.requests.Request(session=session)


def _reason(exc: Exception) -> str:
    """What google-auth found wrong, said without its message (which may quote the token)."""
    text = str(exc)
    if text.startswith("Token expired"):
        return "the Google ID token has expired: reopen the sidebar"
    if text.startswith("Token used too early"):
        return "the Google ID token is not valid yet (is this server's clock right?)"
    if text.startswith("Token has wrong audience"):
        return "the Google ID token was issued for another application (its audience is not this add-on's client id)"
    if text.startswith(("Could not verify token signature", "Certificate for key id")):
        return "the Google ID token's signature does not verify against Google's certificates"
    if text.startswith("Unsupported signature algorithm"):
        return "the Google ID token is not signed with an algorithm Google uses"
    if text.startswith("Token does not contain required claim"):
        return "the Google ID token lacks its issue or expiry time"
    return "the Google ID token is malformed (not a signed JWT)"


class GoogleIdentityVerifier:
    """Verifies Google ID tokens issued for one of `client_ids` (the add-on's OAuth client ids)."""

    def __init__(self, client_ids: Sequence[str], certs_url: str, *, clock_skew_s: int = 10) -> None:
        self.client_ids = [c.strip() for c in client_ids if c.strip()]
        self.certs_url = certs_url
        self.clock_skew_s = clock_skew_s
        self._request = _cached_request()
        self._refetched_at = float("-inf")  # time.monotonic() of the last early fetch
        self._refetch_lock = threading.Lock()

    def verify(self, id_token: str) -> GoogleUser:
        """The Google user the token proves, or GoogleIdentityError saying what is wrong."""
        if not self.client_ids:
            raise NotConfigured("TRIBUTARY_GOOGLE_CLIENT_IDS is not set: no Google ID token can be accepted")
        if not isinstance(id_token, str) or not id_token.strip():
            raise GoogleIdentityError("no Google ID token was sent (header Authorization: Bearer <token>)")
        if len(id_token) > MAX_ID_TOKEN_CHARS:
            raise GoogleIdentityError(f"the Google ID token is longer than {MAX_ID_TOKEN_CHARS} characters")
        claims = self._verified_claims(id_token.strip())
        return _user_from(claims)

    def _verified_claims(self, token: str) -> Mapping[str, Any]:
        try:
            try:
                return self._verify_with(self._request, token)
            except ValueError as exc:
                if not str(exc).startswith("Certificate for key id") or not self._may_refetch():
                    raise
                self._request = _cached_request()  # a fresh cache: the next fetch goes to Google
                return self._verify_with(self._request, token)
        except google.auth.exceptions.TransportError:
            raise GoogleCertificatesUnavailable(
                f"Google's ID-token certificates could not be fetched from {self.certs_url}: try again shortly"
            ) from None
        except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
            raise GoogleIdentityError(_reason(exc)) from None


    def _verify_with(self, request: google.auth.transport.requests.Request, token: str) -> Mapping[str, Any]:
        return google_id_token.verify_token(
            token, request, audience=self.client_ids, certs_url=self.certs_url, clock_skew_in_seconds=self.clock_skew_s
        )

    def _may_refetch(self) -> bool:
        with self._refetch_lock:
            now = time.monotonic()
            if now - self._refetched_at < REFETCH_UNKNOWN_KID_S:
                return False
            self._refetched_at = now
            return True


def _user_from(claims: Mapping[str, Any]) -> GoogleUser:
    issuer = claims.get("iss")
    if issuer not in GOOGLE_ISSUERS:
        raise GoogleIdentityError(f"the ID token was not issued by Google (issuer {str(issuer)[:80]!r})")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise GoogleIdentityError("the Google ID token carries no email: the add-on needs the userinfo.email scope")
    # Google sends a boolean; older tokens sent the string "true".
    if claims.get("email_verified") not in (True, "true"):
        raise GoogleIdentityError(f"Google has not verified the email {email}")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise GoogleIdentityError("the Google ID token names no subject (sub)")
    hosted_domain = claims.get("hd")
    name = claims.get("name")
    return GoogleUser(
        email=email.strip().lower(),
        subject=subject,
        hosted_domain=hosted_domain if isinstance(hosted_domain, str) and hosted_domain else None,
        name=name if isinstance(name, str) and name else None,
    )
