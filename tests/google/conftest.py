"""Fixtures of the Google loopback servers (defined in tests/google/fixtures.py)."""

from tests.google.fixtures import google_certs, google_verifier  # noqa: F401  (fixtures)
