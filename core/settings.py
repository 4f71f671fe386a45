"""Application settings from TRIBUTARY_* environment variables and an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.provider_settings import ProviderSettings

DEFAULT_VAR_DIR = Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", env_file=".env", extra="ignore")

    database_url: str = Field(default_factory=lambda: f"sqlite:///{DEFAULT_VAR_DIR / 'tributary.db'}")
    redis_url: str | None = None
    # Where huey keeps its queue when no Redis is configured.
    huey_sqlite_path: str = Field(default_factory=lambda: str(DEFAULT_VAR_DIR / "huey.db"))

    web_host: str = "127.0.0.1"
    web_port: int = 8000

    # Email verification. Defaults are the real internet's: the system resolver and SMTP port 25.
    # `make run` and the tests point these at the simulated mail internet on loopback.
    verify_dns_nameservers: list[str] = Field(default_factory=list)
    verify_dns_port: int = 53
    verify_smtp_port: int = 25
    verify_helo_name: str = "verifier.tributary.invalid"
    verify_mail_from: str = "verify@tributary.invalid"
    verify_connect_timeout_s: float = 10.0
    verify_command_timeout_s: float = 30.0
    # A verification older than this is re-checked before anything is charged for it.
    verify_freshness_days: int = 30
    # Accept RFC 6761 `.test` domains (the demo world and the loopback harness); never in production.
    verify_test_domains: bool = False

    # A hold that is neither posted nor voided within this time releases itself.
    data_request_hold_timeout_s: int = 600
    # How long one data-request lookup may own a (team, person, kind) before another may retry it.
    data_request_lease_s: int = 120

    # Slack (bot/). Single-workspace mode: a bot token. Multi-workspace mode: client id and secret (OAuth).
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    # Socket Mode's app-level token (xapp-...), for `tributary bot --socket-mode`.
    slack_app_token: str | None = None
    # The Web API base URL; tests point it at a loopback server.
    slack_api_url: str = "https://slack.com/api/"
    # Refund notices sent per `tributary bot deliver-notices` pass.
    slack_notice_batch: int = 100

    # A worker sending a digest owns it this long; after that another worker may retry it.
    digest_delivery_lease_s: int = 600

    # Background jobs (huey). Queue name: workers and producers of one deployment share it.
    huey_name: str = "tributary"
    # Run a job consumer inside `tributary serve`; unset means "yes unless Redis is configured"
    # (embedded mode has no separate worker process).
    jobs_in_process: bool | None = None
    worker_threads: int = 2

    # Sending through Tributary. Envelope sender for every send, so that DSNs reach the bounce mailbox.
    bounce_address: str | None = None
    smtp_timeout_s: float = 30.0
    # Extra CA bundle trusted for relays with a private certificate (PEM file).
    smtp_ca_file: str | None = None

    # The bounce mailbox polled on a schedule (IMAP). security: ssl | starttls | none.
    bounce_imap_host: str | None = None
    bounce_imap_port: int = 993
    bounce_imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    bounce_imap_user: str | None = None
    bounce_imap_password: SecretStr | None = None
    bounce_imap_folder: str = "INBOX"
    bounce_imap_timeout_s: float = 30.0

    # Bounce webhook (POST /api/v1/events/bounces): HMAC-SHA256 shared secret; unset disables it.
    bounce_webhook_secret: SecretStr | None = None
    bounce_webhook_tolerance_s: int = 300

    # Waterfall enrichment: external data providers, a JSON list (see core/provider_settings.py).
    providers: list[ProviderSettings] = Field(default_factory=list)
    # The pattern finder: candidates verified per person at most, and per verifier batch.
    finder_max_candidates: int = 8
    finder_batch_size: int = 3

    # Keys the contributor fingerprints (HMAC) in the shared tables. The default is for development
    # only: production MUST set its own secret, kept outside the database (anyone with both can
    # recompute which fingerprint is which team).
    contributor_key: SecretStr = SecretStr("tributary-dev-contributor-key--set-TRIBUTARY_CONTRIBUTOR_KEY-in-production")

    # Enrichment jobs (CSV, Sheets): lookups in flight per job (they are network-bound), and how long
    # a job's spend-cap hold lives before it releases itself (a resumed job takes a new one).
    enrich_workers: int = 16
    enrich_hold_timeout_s: int = 24 * 3600
    # Jobs on workers (`enrich --on-workers`, core/enrichment/chunks.py): rows per chunk, how long a
    # worker owns a chunk without renewing it (a dead worker's chunk is taken over after this), and
    # chunks of one team queued or running at a time (fairness between teams).
    enrich_chunk_rows: int = Field(default=500, ge=1)
    enrich_chunk_lease_s: float = Field(default=60.0, gt=0)
    enrich_team_chunks: int = Field(default=2, ge=1)
    # Logs as one JSON object per line (with job_id, chunk_id when known) instead of plain text.
    log_json: bool = False

    # Slack: threads per web worker running the work behind acknowledged commands and buttons
    # (lookups, data requests, respond). Few: busy ones take the worker's GIL from the acks (2 kept the
    # benchmark's ack p99 under 300 ms, 4 did not); raise it if slow provider calls queue the buttons.
    slack_lazy_threads: int = 2


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
