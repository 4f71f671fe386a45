"""pytest fixtures for the Google loopback servers; tests/google/conftest.py imports them, and any
other test folder can too (`from tests.google.fixtures import google_certs, ...  # noqa: F401`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sheets_addon.google_identity import GoogleIdentityVerifier
from tests.google.identity import TEST_CLIENT_ID, GoogleCertsServer


@pytest.fixture
def google_certs() -> Iterator[GoogleCertsServer]:
    """Google's ID-token certificates endpoint on loopback, publishing the tests' primary key."""
    with GoogleCertsServer() as server:
        yield server


@pytest.fixture
def google_verifier(google_certs: GoogleCertsServer) -> GoogleIdentityVerifier:
    """The production verifier pointed at `google_certs`, accepting TEST_CLIENT_ID."""
    return GoogleIdentityVerifier([TEST_CLIENT_ID], google_certs.certs_url)
