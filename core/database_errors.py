"""Database failures a user can fix, said in one line: which server cannot be reached, or that the
schema is missing and `tributary db upgrade` creates it. Anything else is a bug and stays an error."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError

POSTGRES_DEFAULT_PORT = 5432
# PostgreSQL SQLSTATEs: undefined table / column (schema not migrated), and the classes of failures
# to connect or log in (08: connection exception, 28: invalid authorization, 3D000: no such database).
_PG_MISSING_SCHEMA = {"42P01", "42703"}
_PG_CONNECT_CLASSES = ("08", "28", "3D")
_SQLITE_MISSING_SCHEMA = ("no such table", "no such column")
_SQLITE_CANNOT_OPEN = "unable to open database file"


def where(url: str) -> str:
    """`PostgreSQL at host:port/db` or `SQLite file path`, with no password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the database (TRIBUTARY_DATABASE_URL is not a database URL)"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    return f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or POSTGRES_DEFAULT_PORT}/{parsed.database or ''}"


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain_database_error(exc: DBAPIError, url: str) -> str | None:
    """One line for a failure the user can fix; None for anything else."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or ""
    text = str(orig or "")
    if sqlstate in _PG_MISSING_SCHEMA or any(s in text for s in _SQLITE_MISSING_SCHEMA):
        return (
            f"{where(url)} has no Tributary schema (or an older one): run `tributary db upgrade` ({_first_line(orig)})"
        )
    if _SQLITE_CANNOT_OPEN in text:
        return f"cannot open {where(url)}: {_first_line(orig)}"
    is_postgres = url.startswith(("postgres", "postgresql"))
    connect_failure = not sqlstate or sqlstate.startswith(_PG_CONNECT_CLASSES)
    if is_postgres and connect_failure and isinstance(exc, OperationalError | InterfaceError):
        return f"cannot connect to {where(url)}: {_first_line(orig)}"
    return None
