"""Fixtures of the Google loopback servers (defined in tests/google/fixtures.py)."""

from tests.google.fixtures import (  # noqa: F401  (fixtures)
    google_certs,
    google_verifier,
    sheets_clock,
    sheets_server,
    sheets_server_quota,
)
