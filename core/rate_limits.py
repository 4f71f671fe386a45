"""Requests counted per key in windows, in the database so every web process shares the count.

A key's window opens at its first request and lasts `window_s`; the request after it opens the next.
One row per key, one upsert per request: at worst 2x the limit passes across a window boundary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, case
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.errors import InvalidInput, RateLimited
from storage.db import is_sqlite, run_write
from storage.models import RateLimitWindow
from storage.timeutil import as_utc, utcnow

_RL = RateLimitWindow.__table__
MAX_KEY_LENGTH = 128


class RateLimits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def hit(self, key: str, *, limit: int, window_s: int, what: str, now: datetime | None = None) -> int:
        """Count one request for `key`; raise RateLimited once more than `limit` fall in its window."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(f"rate limit key: 1 to {MAX_KEY_LENGTH} characters, got {len(key or '')}")
        if limit < 1 or window_s < 1:
            raise InvalidInput(f"rate limit for {what}: limit and window must be positive")
        now = now or utcnow()
        expired = _RL.c.window_start <= now - timedelta(seconds=window_s)

        def op(conn: Connection) -> tuple[int, datetime]:
            insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
            stmt = insert(_RL).values(key=key, window_start=now, count=1)
            # Both right-hand sides read the row as it was: a window that has run out starts over at now.
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "count": case((expired, 1), else_=_RL.c.count + 1),
                    "window_start": case((expired, now), else_=_RL.c.window_start),
                },
            ).returning(_RL.c.count, _RL.c.window_start)
            row = conn.execute(stmt).one()
            return row.count, as_utc(row.window_start)

        count, window_start = run_write(self.engine, op)
        if count > limit:
            retry_after_s = max(1, int((window_start + timedelta(seconds=window_s) - now).total_seconds()))
            raise RateLimited(
                f"{what}: at most {limit} every {window_s} s; try again in {retry_after_s} s",
                retry_after_s=retry_after_s,
            )
        return count


__all__ = ["RateLimits"]
