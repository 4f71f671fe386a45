"""The named contact sources a waterfall can use: built in (database, pattern) plus the providers
configured in settings. Built once per process so rate limiters and circuit breakers are shared."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from core.finder.finder import EmailFinder, VerifyBatch
from core.sources.base import ContactSource
from core.sources.database import DatabaseSource
from core.sources.http_provider import HttpProviderSource, ProviderConfig
from core.sources.pattern_finder import PatternFinderSource
from core.sources.provider_settings import ProviderSettings

BUILT_IN = ("database", "pattern")


def provider_config(entry: ProviderSettings) -> ProviderConfig:
    return ProviderConfig(
        name=entry.name,
        base_url=entry.base_url,
        api_key=entry.api_key.get_secret_value(),
        cost_per_hit_usd=entry.cost_per_hit_usd,
        rate_limit_per_s=entry.rate_limit_per_s,
        burst=entry.burst,
        timeout_s=entry.timeout_s,
        max_attempts=entry.max_attempts,
        max_retry_after_s=entry.max_retry_after_s,
        circuit_failure_threshold=entry.circuit_failure_threshold,
        circuit_cooldown_s=entry.circuit_cooldown_s,
    )


def build_sources(
    engine: Engine,
    providers: Sequence[ProviderSettings],
    verify_batch: VerifyBatch,
    *,
    finder_max_candidates: int = 8,
    finder_batch_size: int = 3,
) -> dict[str, ContactSource]:
    finder = EmailFinder(engine, verify_batch, max_candidates=finder_max_candidates, batch_size=finder_batch_size)
    sources: dict[str, ContactSource] = {"database": DatabaseSource(engine), "pattern": PatternFinderSource(finder)}
    for entry in providers:
        if entry.name in sources:
            raise ValueError(f"provider name {entry.name!r} is taken (built-in or listed twice)")
        sources[entry.name] = HttpProviderSource(provider_config(entry))
    return sources
