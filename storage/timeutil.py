"""Time convention: timestamps are timezone-aware UTC in Python and `timestamptz` in PostgreSQL
(SQLModel's UTCDateTime refuses naive values, so a local time can never slip in)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
