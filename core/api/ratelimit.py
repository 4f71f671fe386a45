"""Requests per minute per API key, counted in fixed one-minute windows shared by every web process:
in Redis when configured (INCR + EXPIRE), else in the database (one upsert per request)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.db import is_sqlite, run_write
from storage.models import ApiRateWindow

_WIN = ApiRateWindow.__table__
WINDOW_S = 60
REDIS_KEY_TTL_S = 2 * WINDOW_S


@dataclass(frozen=True)
class RateDecision:
    limit: int
    remaining: int
    reset_s: int  # seconds until the window resets
    allowed: bool


class RateCounter(Protocol):
    def hit(self, key_id: int, window_start: int) -> int:
        """Count one request of the key in the window; return the window's count including it."""
        ...


class DatabaseCounter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        insert = sqlite_insert if is_sqlite(engine) else pg_insert
        stmt = insert(_WIN)
        self._upsert = stmt.on_conflict_do_update(
            index_elements=["api_key_id", "window_start"], set_={"hits": _WIN.c.hits + 1}
        ).returning(_WIN.c.hits)

    def hit(self, key_id: int, window_start: int) -> int:
        def op(conn) -> int:
            hits = conn.execute(self._upsert.values(api_key_id=key_id, window_start=window_start, hits=1)).scalar_one()
            if hits == 1:  # first request of a new window: drop this key's old ones
                conn.execute(delete(_WIN).where(_WIN.c.api_key_id == key_id, _WIN.c.window_start < window_start))
            return hits

        return run_write(self.engine, op)


class RedisCounter:
    def __init__(self, client, prefix: str = "tributary:api:rate:") -> None:
        self.client = client
        self.prefix = prefix

    def hit(self, key_id: int, window_start: int) -> int:
        name = f"{self.prefix}{key_id}:{window_start}"
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, REDIS_KEY_TTL_S)
        hits, _ = pipe.execute()
        return int(hits)


class RateLimiter:
    def __init__(self, counter: RateCounter) -> None:
        self.counter = counter

    def check(self, key_id: int, limit_per_minute: int, now_s: float | None = None) -> RateDecision:
        now_s = time.time() if now_s is None else now_s
        window_start = int(now_s // WINDOW_S) * WINDOW_S
        hits = self.counter.hit(key_id, window_start)
        reset_s = max(1, window_start + WINDOW_S - int(now_s))
        return RateDecision(limit_per_minute, max(0, limit_per_minute - hits), reset_s, hits <= limit_per_minute)
