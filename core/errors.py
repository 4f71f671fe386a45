"""Errors core raises at its boundary. Each says what is wrong and where."""

from __future__ import annotations


class TributaryError(Exception):
    """Base of every error a user can cause; front ends show `str(exc)` as is."""

    exit_code = 2


class NotFound(TributaryError):
    pass


class InvalidInput(TributaryError):
    pass


class AccessDenied(TributaryError):
    """The actor may not do this; the message says who may."""


class NotAMember(AccessDenied):
    """Refused because the actor is no member of the team: front ends show only how to get linked."""


class RateLimited(TributaryError):
    """Too many requests of one kind in a window; the message says when to try again."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
