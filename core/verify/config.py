"""Every network-facing knob of the email verifier, in one immutable value.

Defaults are the real internet's (system resolver, SMTP port 25, timeouts a real MX needs). Tests and
benchmarks point the verifier at the loopback harness by passing a different config, never by
patching code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class VerifierConfig:
    # DNS. Empty nameservers = the system resolver (/etc/resolv.conf).
    dns_nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    dns_timeout_s: float = 5.0  # whole lookup, all nameservers and retries included
    dns_concurrency: int = 100
    # Negative answers (NXDOMAIN, no records) are cached this long when the zone gives no TTL.
    dns_negative_ttl_s: float = 300.0
    dns_max_ttl_s: float = 3600.0
    resolve_ipv6: bool = False  # connect over IPv6 too (AAAA) when an MX has no IPv4 address

    # SMTP.
    smtp_port: int = 25
    helo_name: str = "verifier.tributary.invalid"
    mail_from: str = "verify@tributary.invalid"
    connect_timeout_s: float = 10.0  # TCP connect plus the 220 banner
    command_timeout_s: float = 30.0  # each command's reply
    starttls: bool = True  # use STARTTLS when the server offers it
    starttls_verify_cert: bool = False  # MX certificates rarely match; we send no message body anyway
    max_concurrency: int = 100  # SMTP sessions open at once, all hosts together
    per_host_concurrency: int = 5  # SMTP sessions open at once to one MX address
    max_rcpt_per_session: int = 25  # targets probed in one session (servers cap recipients)
    max_mx_hosts: int = 5  # MX hosts tried before giving up on a domain

    # Temporary failures (4xx, greylisting): attempts after the first, exponential backoff between.
    temp_retries: int = 2
    retry_initial_wait_s: float = 20.0
    retry_max_wait_s: float = 120.0

    catch_all_cache_ttl_s: float = 3600.0

    # Stored results younger than this are reused instead of probing again.
    freshness_window: timedelta = field(default_factory=lambda: timedelta(days=30))
    # Unknown results (greylisted, timeout...) may resolve soon, so they go stale sooner.
    unknown_freshness_window: timedelta = field(default_factory=lambda: timedelta(hours=6))

    # Accept RFC 6761 `.test` domains (the loopback harness); never set in production.
    test_environment: bool = False

    def __post_init__(self) -> None:
        for name in ("dns_timeout_s", "connect_timeout_s", "command_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("max_concurrency", "per_host_concurrency", "max_rcpt_per_session", "dns_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.temp_retries < 0:
            raise ValueError("temp_retries must not be negative")
        if not 0 < self.smtp_port < 65536 or not 0 < self.dns_port < 65536:
            raise ValueError("ports must be between 1 and 65535")
        for name in ("helo_name", "mail_from"):
            value = getattr(self, name)
            if not value or any(ord(c) < 33 or ord(c) == 127 for c in value):
                raise ValueError(f"{name} must be non-empty and free of spaces and control characters")
