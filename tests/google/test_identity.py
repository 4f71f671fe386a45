"""GoogleIdentityVerifier against the loopback certificates endpoint: what passes, what is refused and why."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.errors import NotConfigured
from sheets_addon.google_identity import (
    GoogleCertificatesUnavailable,
    GoogleIdentityError,
    GoogleIdentityVerifier,
    GoogleUser,
)
from tests.google.identity import TEST_CLIENT_ID, GoogleCertsServer, mint_id_token, signing_key

OTHER_CLIENT_ID = "999-someoneelse.apps.googleusercontent.com"


def test_a_valid_token_is_the_google_user(google_certs: GoogleCertsServer, google_verifier) -> None:
    token = google_certs.mint_id_token("Ada@Example.com", hd="example.com", name="Ada Lovelace", subject="1077")
    assert google_verifier.verify(token) == GoogleUser(
        email="ada@example.com", subject="1077", hosted_domain="example.com", name="Ada Lovelace"
    )


def test_the_issuer_without_scheme_is_google_too(google_certs: GoogleCertsServer, google_verifier) -> None:
    token = google_certs.mint_id_token("ada@example.com", issuer="accounts.google.com")
    assert google_verifier.verify(token).hosted_domain is None


def test_any_configured_client_id_is_an_accepted_audience(google_certs: GoogleCertsServer) -> None:
    verifier = GoogleIdentityVerifier([OTHER_CLIENT_ID, TEST_CLIENT_ID], google_certs.certs_url)
    assert verifier.verify(google_certs.mint_id_token("a@example.com", OTHER_CLIENT_ID)).email == "a@example.com"
    assert verifier.verify(google_certs.mint_id_token("b@example.com", TEST_CLIENT_ID)).email == "b@example.com"


REFUSALS = {
    "signed by a key Google did not publish": (
        lambda s: mint_id_token("a@example.com", key=_impostor(s)),
        "signature does not verify",
    ),
    "signed by a key id Google does not know": (
        lambda s: mint_id_token("a@example.com", key=signing_key("unpublished")),
        "signature does not verify",
    ),
    "expired": (lambda s: s.mint_id_token("a@example.com", expires_in_s=-60), "has expired"),
    "for another application": (lambda s: s.mint_id_token("a@example.com", OTHER_CLIENT_ID), "another application"),
    "from another issuer": (
        lambda s: s.mint_id_token("a@example.com", issuer="https://evil.example.com"),
        "not issued by Google",
    ),
    "with an unverified email": (lambda s: s.mint_id_token("a@example.com", email_verified=False), "not verified"),
    "with email_verified missing": (
        lambda s: s.mint_id_token("a@example.com", email_verified=None),
        "not verified",
    ),
    "with no email": (lambda s: s.mint_id_token("", extra_claims={"email": None}), "no email"),
    "garbage": (lambda s: "not-a-jwt", "malformed"),
    "three garbage segments": (lambda s: "a.b.c", "malformed"),
    "unsigned (alg none)": (lambda s: _unsigned(s), "not signed with an algorithm Google uses"),
    "empty": (lambda s: "  ", "no Google ID token was sent"),
    "huge": (lambda s: "x" * 9000, "longer than"),
}


def _impostor(server: GoogleCertsServer):
    # The published key id with another key's private half: a forgery.
    other = signing_key("impostor")
    return type(other)(server.keys[0].key_id, other.private_pem, other.certificate_pem)


def _unsigned(server: GoogleCertsServer) -> str:
    _header, payload, _signature = server.mint_id_token("a@example.com").split(".")
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{none_header}.{payload}."


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_tokens_say_what_is_wrong_and_never_echo_the_token(
    case: str, google_certs: GoogleCertsServer, google_verifier: GoogleIdentityVerifier
) -> None:
    make, expected = REFUSALS[case]
    token = make(google_certs)
    with pytest.raises(GoogleIdentityError) as caught:
        google_verifier.verify(token)
    assert expected in str(caught.value)
    assert caught.value.http_status == 401
    if len(token.strip()) > 10:
        assert token.strip()[:40] not in str(caught.value)
        assert all(part[:20] not in str(caught.value) for part in token.split(".") if part)


def test_certificates_are_fetched_once_while_their_max_age_lasts(google_certs: GoogleCertsServer) -> None:
    verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], google_certs.certs_url)
    for n in range(5):
        verifier.verify(google_certs.mint_id_token(f"u{n}@example.com"))
    assert google_certs.fetches == 1


def test_certificates_without_max_age_are_fetched_every_time() -> None:
    with GoogleCertsServer(max_age_s=0) as server:
        verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], server.certs_url)
        for n in range(3):
            verifier.verify(server.mint_id_token(f"u{n}@example.com"))
        assert server.fetches == 3


def test_a_rotated_key_verifies_once_the_cache_expires() -> None:
    with GoogleCertsServer(max_age_s=0) as server:
        verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], server.certs_url)
        new_key = signing_key("rotated")
        token = mint_id_token("a@example.com", key=new_key)
        with pytest.raises(GoogleIdentityError):
            verifier.verify(token)
        server.keys = [new_key, *server.keys]
        assert verifier.verify(token).email == "a@example.com"


def test_a_key_rotated_before_the_cache_expires_is_fetched_early_but_not_again_and_again() -> None:
    with GoogleCertsServer(max_age_s=3600) as server:
        verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], server.certs_url)
        verifier.verify(server.mint_id_token("a@example.com"))
        assert server.fetches == 1
        new_key = signing_key("rotated")
        server.keys = [new_key, *server.keys]  # Google rotated; our copy is good for another hour
        token = mint_id_token("b@example.com", key=new_key)
        assert verifier.verify(token).email == "b@example.com"
        assert server.fetches == 2  # one early fetch for the unknown key id
        forged = mint_id_token("c@example.com", key=signing_key("nobody-publishes-this"))
        for _ in range(5):
            with pytest.raises(GoogleIdentityError, match="signature"):
                verifier.verify(forged)
        assert server.fetches == 2  # unknown key ids do not make us fetch again within the minute
        assert verifier.verify(token).email == "b@example.com"


def test_unreachable_certificates_are_a_503_not_a_forgery(google_certs: GoogleCertsServer) -> None:
    google_certs.unavailable = True
    verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], google_certs.certs_url)
    with pytest.raises(GoogleCertificatesUnavailable) as caught:
        verifier.verify(google_certs.mint_id_token("a@example.com"))
    assert caught.value.http_status == 503
    assert "could not be fetched" in str(caught.value)


def test_no_client_ids_configured_accepts_nothing(google_certs: GoogleCertsServer) -> None:
    verifier = GoogleIdentityVerifier(["", " "], google_certs.certs_url)
    with pytest.raises(NotConfigured, match="TRIBUTARY_GOOGLE_CLIENT_IDS"):
        verifier.verify(google_certs.mint_id_token("a@example.com"))


def test_threads_verify_at_once_sharing_the_cached_certificates(google_certs: GoogleCertsServer) -> None:
    verifier = GoogleIdentityVerifier([TEST_CLIENT_ID], google_certs.certs_url)
    tokens = [google_certs.mint_id_token(f"u{n}@example.com") for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        users = list(pool.map(verifier.verify, tokens))
    assert [u.email for u in users] == [f"u{n}@example.com" for n in range(40)]
    assert 1 <= google_certs.fetches <= 8  # at most one miss per thread before the cache holds them
