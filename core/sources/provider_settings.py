"""How an external data provider is configured (one entry of TRIBUTARY_PROVIDERS, a JSON list):

    TRIBUTARY_PROVIDERS='[{"name": "hunter", "base_url": "https://api.hunter.io", "api_key": "...",
                           "cost_per_hit_usd": "0.049", "rate_limit_per_s": 15}]'

Kept in settings (the environment), not in the database, so API keys never sit in a table or a
backup. The name is what admins put in a team's waterfall (`tributary waterfall set`)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field, SecretStr, field_validator


class ProviderSettings(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    base_url: str = Field(pattern=r"^https?://")
    api_key: SecretStr
    cost_per_hit_usd: Decimal = Field(default=Decimal(0), ge=0)
    rate_limit_per_s: float = Field(default=10.0, gt=0)
    # Requests sent at once above the steady rate (default: one second's worth). A vendor that
    # counts a sliding second answers a full burst on top of the rate with 429s: set it small.
    burst: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_retry_after_s: float = Field(default=30.0, ge=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=60.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        from core.sources.http_provider import base_url_problem  # the one rule, kept with the client

        problem = base_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value
