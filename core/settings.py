"""Application settings from TRIBUTARY_* environment variables and an optional `.env` file."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from core.errors import TributaryError
from core.sources.provider_settings import ProviderSettings

DEFAULT_VAR_DIR = Path.cwd() / "var"
# Keys generated on first run of the embedded demo (`tributary secrets init`); `.env` and the
# environment override them.
KEYS_FILE = DEFAULT_VAR_DIR / "keys.env"
DEV_CONTRIBUTOR_KEY = "tributary-dev-contributor-key--set-TRIBUTARY_CONTRIBUTOR_KEY-in-production"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", env_file=(KEYS_FILE, ".env"), extra="ignore")

    # A development machine: serve/worker/gunicorn start even with default or missing keys.
    development: bool = False
    # Fernet keys (comma-separated, newest first) encrypting tokens at rest (core.secrets).
    secret_keys: SecretStr | None = None
    # HMAC key of the per-send VERP token in every send's envelope sender (core.bounces.verp).
    verp_key: SecretStr | None = None

    database_url: str = Field(default_factory=lambda: f"sqlite:///{DEFAULT_VAR_DIR / 'tributary.db'}")
    redis_url: str | None = None
    # Where huey keeps its queue when no Redis is configured.
    huey_sqlite_path: str = Field(default_factory=lambda: str(DEFAULT_VAR_DIR / "huey.db"))

    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Largest request body the web app reads (MAX_CONTENT_LENGTH): past it, 413 before the rest is
    # read, chunked bodies included. Endpoints may set a tighter cap (the bounce webhook: 1 MiB).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)

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
    # The embedded SQLite demo (team `demo`, none of the verifier settings above given) verifies against
    # the demo mail world on loopback (demo/mailworld.py); false: against whatever the settings say.
    demo_mail: bool = True

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
    # `/tributary lookup`s per member and minute (counted in the database, shared by every process).
    slack_lookups_per_minute: int = Field(default=30, ge=1)
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
    # Connected mailboxes (core/mailboxes): messages read per sync run, MX look-ups per run, the
    # region phone numbers written without +CC are read in.
    mailbox_sync_max_messages: int = Field(default=5_000, ge=1)
    mailbox_mx_lookups_per_sync: int = Field(default=200, ge=0)
    mailbox_phone_region: str = "US"

    # Engagement (core/engagement): a reply to a send made through Tributary makes its address
    # likely_to_engage for this many days, then it is plain verified again; a send is counted as
    # delivered (weaker evidence, never promoting) when this many hours pass without a bounce.
    engagement_window_days: int = Field(default=90, ge=1, le=3650)
    engagement_delivery_grace_hours: int = Field(default=72, ge=1, le=24 * 60)

    # Bounce webhook (POST /api/v1/events/bounces/<team>): each team's own secret
    # (`tributary bounces webhook-secret TEAM`); a signature older than this is refused.
    bounce_webhook_tolerance_s: int = 300

    # Waterfall enrichment: external data providers, a JSON list (see core/sources/provider_settings.py).
    providers: list[ProviderSettings] = Field(default_factory=list)
    # The pattern finder: candidates verified per person at most, and per verifier batch.
    finder_max_candidates: int = 8
    finder_batch_size: int = 3

    # CRM sync (core/crm/): HubSpot's API base URL, the requests per 10 s the client paces itself to
    # (HubSpot's limit per app), how far back each incremental pull re-reads (search indexing lags a
    # write by seconds), and how often the scheduled sync runs (minutes; 0 turns it off).
    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_requests_per_10s: int = Field(default=100, ge=1)
    crm_cursor_overlap_s: int = Field(default=60, ge=0)
    crm_sync_interval_min: int = Field(default=60, ge=0)

    # Keys the contributor fingerprints (HMAC) in the shared tables. The default is for development
    # only: production MUST set its own secret, kept outside the database (anyone with both can
    # recompute which fingerprint is which team).
    contributor_key: SecretStr = SecretStr(DEV_CONTRIBUTOR_KEY)

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

    # Rate limits (API keys, Slack lookups): the Redis key prefix of their windows (with TRIBUTARY_REDIS_URL).
    rate_limit_redis_prefix: str = "tributary:rate:"
    # REST API enrichment jobs: their uploaded inputs and enriched outputs (shared by web and workers).
    # Job completion webhooks: attempts, and the first wait between them (doubling, at most 5 minutes).
    api_webhook_max_attempts: int = 8
    api_webhook_backoff_s: float = 1.0
    # Completion webhooks go only to public addresses unless this is set (tests, on-premise receivers).
    api_webhook_allow_private: bool = False
    api_job_dir: str = Field(default_factory=lambda: str(DEFAULT_VAR_DIR / "api-jobs"))

    # Slack: threads per web worker running the work behind acknowledged commands and buttons
    # (lookups, data requests, respond). Few: busy ones take the worker's GIL from the acks (2 kept the
    # benchmark's ack p99 under 300 ms, 4 did not); raise it if slow provider calls queue the buttons.
    slack_lazy_threads: int = 2

    # Google Sheets add-on. The OAuth client ids whose ID tokens are accepted (comma-separated: the
    # allowed audiences); where Google's ID-token certificates and the Sheets API v4 are (tests point
    # both at loopback servers).
    google_client_ids: str = ""
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    sheets_api_url: str = "https://sheets.googleapis.com"
    # Sheets API requests per user and minute this process allows itself (Google's quota: 60 each per
    # user per project; the limit is per process, so N processes may together send N times as many).
    sheets_reads_per_minute: int = Field(default=60, ge=1)
    sheets_writes_per_minute: int = Field(default=60, ge=1)
    # Largest selection (rows) a Sheets job accepts.
    sheets_max_rows: int = Field(default=10000, ge=1)


    def secret_key_list(self) -> list[str]:
        raw = self.secret_keys.get_secret_value() if self.secret_keys else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    def google_client_id_list(self) -> list[str]:
        return [c.strip() for c in self.google_client_ids.split(",") if c.strip()]


class InvalidSetting(TributaryError):
    """A TRIBUTARY_* variable (environment or .env) that cannot be read; names the variable."""


ENV_PREFIX = "TRIBUTARY_"


def _variable(loc: tuple) -> str:
    name = f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else f"{ENV_PREFIX}*"
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])


def _describe_validation(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        given = error.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        problems.append(f"{_variable(tuple(error['loc']))}: {error['msg']}{shown}")
    return "; ".join(problems)


def _describe_settings_error(exc: SettingsError) -> str:
    # pydantic-settings says `error parsing value for field "providers" from source "..."`; the
    # JSON decoder's complaint is the cause.
    field = re.search(r'field "([^"]+)"', str(exc))
    name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a TRIBUTARY_* setting"
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return f"{name}: not valid JSON ({cause.msg} at line {cause.lineno} column {cause.colno})"
    return f"{name}: cannot be read ({cause or exc})"


def load_settings() -> Settings:
    """Settings, or `InvalidSetting` naming the variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSetting(_describe_validation(exc)) from None
    except SettingsError as exc:
        raise InvalidSetting(_describe_settings_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
