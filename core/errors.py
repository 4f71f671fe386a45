"""Errors core raises at its boundary. Each says what is wrong and where."""

from __future__ import annotations


class TributaryError(Exception):
    """Base of every error a user can cause; front ends show `str(exc)` as is."""

    exit_code = 2


class NotFound(TributaryError):
    pass


class InvalidInput(TributaryError):
    pass
