"""Application settings from TRIBUTARY_* environment variables and an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", env_file=".env", extra="ignore")

    database_url: str = Field(default_factory=lambda: f"sqlite:///{DEFAULT_VAR_DIR / 'tributary.db'}")
    redis_url: str | None = None
    # Where huey keeps its queue when no Redis is configured.
    huey_sqlite_path: str = Field(default_factory=lambda: str(DEFAULT_VAR_DIR / "huey.db"))

    web_host: str = "127.0.0.1"
    web_port: int = 8000

    # A hold that is neither posted nor voided within this time releases itself.
    data_request_hold_timeout_s: int = 600
    # How long one data-request lookup may own a (team, person, kind) before another may retry it.
    data_request_lease_s: int = 120


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
