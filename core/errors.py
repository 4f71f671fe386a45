"""Errors core raises at its boundary. Each says what is wrong and where."""

from __future__ import annotations


class TributaryError(Exception):
    """Base of every error a user can cause; front ends show `str(exc)` as is.

    Where the error is can be said with the optional keywords: `field` (an input's name), `row` and
    `column` (a cell of an uploaded sheet or CSV, row 1-based as a spreadsheet counts) and
    `pointer` (an RFC 6901 JSON pointer into a request body). They are class-level `None` unless
    given, so a subclass that sets `self.field` itself keeps working. `http_status` is what an
    HTTP front end answers with (400 unless a subclass says otherwise).
    """

    exit_code = 2
    http_status = 400
    field: str | None = None
    row: int | None = None
    column: str | None = None
    pointer: str | None = None

    def __init__(
        self,
        *args: object,
        field: str | None = None,
        row: int | None = None,
        column: str | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(*args)
        for name, value in (("field", field), ("row", row), ("column", column), ("pointer", pointer)):
            if value is not None:
                setattr(self, name, value)


class NotFound(TributaryError):
    http_status = 404


class InvalidInput(TributaryError):
    pass


class AccessDenied(TributaryError):
    """The actor may not do this; the message says who may."""

    http_status = 403


class NotAMember(AccessDenied):
    """Refused because the actor is no member of the team: front ends show only how to get linked."""


class RateLimited(TributaryError):
    """Too many requests of one kind in a window; the message says when to try again."""

    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
class NotConfigured(TributaryError):
    """A feature whose settings are missing; the message names them."""

    http_status = 503


class InvariantViolation(RuntimeError):
    """A rule the code itself must keep (never bad input) was found broken: a bug, so no front end
    shows its text. Raised instead of `assert`, which `python -O` removes, wherever money or
    shared data would go wrong if execution went on."""


def check(condition: bool, message: str) -> None:
    """Raise `InvariantViolation(message)` unless `condition` holds."""
    if not condition:
        raise InvariantViolation(message)
