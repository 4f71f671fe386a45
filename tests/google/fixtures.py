"""pytest fixtures for the Google loopback servers; tests/google/conftest.py imports them, and any
other test folder can too (`from tests.google.fixtures import google_certs, ...  # noqa: F401`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sheets_addon.google_identity import GoogleIdentityVerifier
from sheets_addon.sheets_api import SheetsClient, SheetsQuota
from tests.google.identity import TEST_CLIENT_ID, GoogleCertsServer
from tests.google.sheets_server import FakeClock, SheetsServer

# Client-side budget of the fixtures: high enough never to wait in a functional test.
UNLIMITED_PER_MINUTE = 1_000_000


@pytest.fixture
def google_certs() -> Iterator[GoogleCertsServer]:
    """Google's ID-token certificates endpoint on loopback, publishing the tests' primary key."""
    with GoogleCertsServer() as server:
        yield server


@pytest.fixture
def google_verifier(google_certs: GoogleCertsServer) -> GoogleIdentityVerifier:
    """The production verifier pointed at `google_certs`, accepting TEST_CLIENT_ID."""
    return GoogleIdentityVerifier([TEST_CLIENT_ID], google_certs.certs_url)


@pytest.fixture
def sheets_server() -> Iterator[SheetsServer]:
    """The Sheets API v4 on loopback, without quota (see `sheets_server_quota` for one with)."""
    with SheetsServer() as server:
        yield server


@pytest.fixture
def sheets_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sheets_server_quota(sheets_clock: FakeClock) -> Iterator[SheetsServer]:
    """The Sheets API enforcing Google's 60 reads and 60 writes per user and minute on `sheets_clock`."""
    with SheetsServer(reads_per_minute=60, writes_per_minute=60, clock=sheets_clock.time) as server:
        yield server


def sheets_client(server: SheetsServer, token: str, user: str, quota: SheetsQuota | None = None) -> SheetsClient:
    """The production client for `user` pointed at `server` (no client-side limit unless `quota`)."""
    limits = quota or SheetsQuota(UNLIMITED_PER_MINUTE, UNLIMITED_PER_MINUTE)
    return SheetsClient(token, base_url=server.base_url, user_key=user, limits=limits)
