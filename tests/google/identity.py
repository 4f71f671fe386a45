"""Google's ID-token certificates on loopback, and ID tokens minted with the tests' own RSA keys.

`GoogleCertsServer` serves `GET /oauth2/v1/certs` exactly like https://www.googleapis.com/oauth2/v1/certs:
a JSON object `{key id: PEM X.509 certificate}` with `Cache-Control: public, max-age=N`. It counts
fetches (so a test can prove the verifier caches) and can be made to fail (`unavailable = True`).

`mint_id_token(email, audience, key=..., ...)` signs an RS256 JWT with the claims Google puts in an
Apps Script identity token (iss, azp, aud, sub, email, email_verified, iat, exp, optional hd/name)
using google-auth's own signer, so the verifier sees exactly the wire format Google sends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

GOOGLE_ISSUER = "https://accounts.google.com"
TEST_CLIENT_ID = "123456789012-tributarytest.apps.googleusercontent.com"
CERTS_PATH = "/oauth2/v1/certs"


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair and its self-signed certificate, as Google publishes them."""

    key_id: str
    private_pem: bytes
    certificate_pem: str

    def signer(self) -> crypt.RSASigner:
        return _signer(self)


@cache
def _signer(key: SigningKey) -> crypt.RSASigner:
    # Loading a PEM private key checks the key (tens of ms): once per key, not once per token.
    return crypt.RSASigner.from_string(key.private_pem, key_id=key.key_id)


@cache
def signing_key(name: str = "primary") -> SigningKey:
    """A fresh 2048-bit key per name, generated once per test process (key generation is slow)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=14))
        .sign(private, hashes.SHA256())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_id = hashlib.sha1(name.encode()).hexdigest()  # Google's kids are 40 hex characters too
    return SigningKey(key_id, private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode())


def mint_id_token(
    email: str,
    audience: str = TEST_CLIENT_ID,
    *,
    key: SigningKey | None = None,
    issuer: str = GOOGLE_ISSUER,
    expires_in_s: int = 3600,
    email_verified: bool | str = True,
    hd: str | None = None,
    name: str | None = None,
    subject: str | None = None,
    issued_at: int | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An ID token like `ScriptApp.getIdentityToken()` returns, signed with `key` (default: the
    primary key a GoogleCertsServer publishes). A negative `expires_in_s` mints an expired token."""
    now = int(time.time()) if issued_at is None else issued_at
    claims: dict[str, Any] = {
        "iss": issuer,
        "azp": audience,
        "aud": audience,
        "sub": subject or str(int(hashlib.sha1(email.encode()).hexdigest()[:15], 16)),
        "email": email,
        "email_verified": email_verified,
        "iat": now if expires_in_s > 0 else now + expires_in_s - 3600,
        "exp": now + expires_in_s,
    }
    if hd is not None:
        claims["hd"] = hd
    if name is not None:
        claims["name"] = name
    claims.update(extra_claims or {})
    return jwt.encode((key or signing_key()).signer(), claims).decode("ascii")


class GoogleCertsServer:
    """The certificates endpoint on 127.0.0.1 (a free port); use as a context manager."""

    def __init__(self, *, keys: list[SigningKey] | None = None, max_age_s: int = 3600) -> None:
        self.keys: list[SigningKey] = list(keys) if keys is not None else [signing_key()]
        self.max_age_s = max_age_s
        self.unavailable = False
        self.fetches = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> GoogleCertsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def certs_url(self) -> str:
        return self.base_url + CERTS_PATH

    def mint_id_token(self, email: str, audience: str = TEST_CLIENT_ID, **claims: Any) -> str:
        """`mint_id_token` with this server's first published key unless `key=` is given."""
        claims.setdefault("key", self.keys[0])
        return mint_id_token(email, audience, **claims)

    def certificates(self) -> dict[str, str]:
        with self._lock:
            return {key.key_id: key.certificate_pem for key in self.keys}

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.fetches += 1
            if self.unavailable:
                return 503, {"Content-Type": "text/plain"}, b"backend unavailable"
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "Cache-Control": f"public, max-age={self.max_age_s}, must-revalidate, no-transform",
        }
        return 200, headers, json.dumps(self.certificates(), indent=2).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] != CERTS_PATH:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = server._answer()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
