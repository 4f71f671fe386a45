"""Requests counted per key in fixed windows, in the database so every web process shares the count.

A fixed window (not a sliding one) is enough for "N lookups a minute": at worst 2N pass across a
window boundary, and one upsert per request is all it costs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.errors import InvalidInput, RateLimited
from storage.db import is_sqlite, run_write
from storage.models import RateLimitWindow
from storage.timeutil import utcnow

_RL = RateLimitWindow.__table__
MAX_KEY_LENGTH = 128


class RateLimits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def hit(self, key: str, *, limit: int, window_s: int, what: str, now: datetime | None = None) -> int:
        """Count one request for `key`; raise RateLimited once more than `limit` fall in the window."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(f"rate limit key: 1 to {MAX_KEY_LENGTH} characters, got {len(key or '')}")
        if limit < 1 or window_s < 1:
            raise InvalidInput(f"rate limit for {what}: limit and window must be positive")
        now = now or utcnow()
        start = datetime.fromtimestamp(int(now.timestamp()) // window_s * window_s, tz=now.tzinfo)

        def op(conn: Connection) -> int:
            # Old windows of this key are never read again: drop them as we go.
            conn.execute(delete(_RL).where(_RL.c.key == key, _RL.c.window_start < start))
            insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
            stmt = insert(_RL).values(key=key, window_start=start, count=1)
            stmt = stmt.on_conflict_do_update(
                index_elements=["key", "window_start"], set_={"count": _RL.c.count + 1}
            ).returning(_RL.c.count)
            return conn.execute(stmt).scalar_one()

        count = run_write(self.engine, op)
        if count > limit:
            retry_after_s = max(1, int((start + timedelta(seconds=window_s) - now).total_seconds()))
            raise RateLimited(
                f"{what}: at most {limit} every {window_s} s; try again in {retry_after_s} s",
                retry_after_s=retry_after_s,
            )
        return count


__all__ = ["RateLimits"]
