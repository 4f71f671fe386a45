"""The huey instance: SQLite storage by default (embedded), Redis when TRIBUTARY_REDIS_URL is set.

Producers and consumers of one deployment must build it from the same settings (same name, same
storage) to share one queue.
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey

from core.settings import Settings


def make_huey(settings: Settings, *, name: str | None = None) -> Huey:
    name = name or settings.huey_name
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url, utc=True)
    path = Path(settings.huey_sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path), utc=True)


__all__ = ["make_huey"]
