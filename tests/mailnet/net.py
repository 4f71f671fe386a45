"""MailNet: a simulated mail internet on loopback (DNS + scripted SMTP hosts) with ground truth.

    with MailNet(latency_s=0.0) as net:            # or the `mailnet` pytest fixture
        net.add_domain("known.test", mailboxes=["alice"])
        ...                                         # add before start()
    config = net.verifier_config()                  # VerifierConfig pointing at the harness

Domains are described before `start()`. Each domain gets its own MX host(s) on distinct loopback
addresses; scripted behaviours are per domain (DNS shape, greylisting, catch-all), per mailbox
(full, disabled) or per host (refuses connections, slow banner, blocklisted sender, STARTTLS).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import TracebackType
from typing import Any

from core.verify.config import VerifierConfig
from storage.models.enums import EmailStatus
from tests.mailnet.dns_server import DnsServer, ZoneEntry
from tests.mailnet.smtp_servers import HostSpec, SmtpCluster, Wire


class DnsShape(StrEnum):
    MX = "mx"  # MX records pointing at the domain's hosts
    A_ONLY = "a_only"  # no MX, an A record on the domain itself (implicit MX)
    NULL_MX = "null_mx"  # RFC 7505 "0 ."
    NO_RECORDS = "no_records"  # the name exists but has neither MX nor A
    NXDOMAIN = "nxdomain"
    SILENT = "silent"  # the DNS server never answers: the client times out


class Mailbox(StrEnum):
    OK = "ok"
    FULL = "full"  # 552 5.2.2
    DISABLED = "disabled"  # 550 5.2.1


@dataclass
class DomainSpec:
    name: str
    dns: DnsShape = DnsShape.MX
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    accept_all: bool = False
    greylist_attempts: int = 0  # RCPTs refused (451 4.7.1) per (client, sender, recipient) first
    hosts: list[HostSpec] = field(default_factory=list)  # MX in preference order (or the A host)

    def truth(self, local: str, host_state: str) -> EmailStatus:
        if self.dns in (DnsShape.NULL_MX, DnsShape.NO_RECORDS, DnsShape.NXDOMAIN):
            return EmailStatus.INVALID
        if self.dns == DnsShape.SILENT or host_state != "up":
            return EmailStatus.UNKNOWN
        if self.greylist_attempts >= MailNet.FOREVER:
            return EmailStatus.UNKNOWN
        state = self.mailboxes.get(local.lower())
        if state == Mailbox.OK:
            return EmailStatus.ACCEPT_ALL if self.accept_all else EmailStatus.VERIFIED
        if state == Mailbox.FULL:
            return EmailStatus.UNKNOWN
        if state == Mailbox.DISABLED:
            return EmailStatus.INVALID
        return EmailStatus.ACCEPT_ALL if self.accept_all else EmailStatus.INVALID


class MailNet:
    FOREVER = 1_000_000  # greylist_attempts for a server that never lets us through

    def __init__(self, *, latency_s: float = 0.0, greylist_min_delay_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.greylist_min_delay_s = greylist_min_delay_s
        self.domains: dict[str, DomainSpec] = {}
        self._hosts: dict[str, HostSpec] = {}
        self._next_ip = 0
        self._greylist_seen: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        self.rcpt_log: list[tuple[str, str]] = []  # (host, recipient) in arrival order
        self._dns: DnsServer | None = None
        self._smtp: SmtpCluster | None = None
        self._remote: tuple[int, int] | None = None

    # ---- describing the world
    def _ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"127.0.{1 + n // 250}.{1 + n % 250}"

    def add_host(self, name: str, **behaviour: Any) -> HostSpec:
        self._require_stopped()
        host = HostSpec(name=name.lower(), ip=self._ip(), **behaviour)
        self._hosts[host.name] = host
        return host

    def add_domain(
        self,
        name: str,
        *,
        mailboxes: list[str] | dict[str, Mailbox] = (),  # type: ignore[assignment]
        accept_all: bool = False,
        greylist_attempts: int = 0,
        dns: DnsShape = DnsShape.MX,
        hosts: list[HostSpec] | None = None,
        **host_behaviour: Any,
    ) -> DomainSpec:
        """A domain with one MX host `mx.<name>` (with `host_behaviour`) unless `hosts` are given."""
        self._require_stopped()
        name = name.lower()
        boxes = mailboxes if isinstance(mailboxes, dict) else {m: Mailbox.OK for m in mailboxes}
        if hosts is None and dns in (DnsShape.MX, DnsShape.A_ONLY):
            host_name = f"mx.{name}" if dns == DnsShape.MX else name
            hosts = [self.add_host(host_name, **host_behaviour)]
        spec = DomainSpec(
            name=name,
            dns=dns,
            mailboxes={k.lower(): v for k, v in boxes.items()},
            accept_all=accept_all,
            greylist_attempts=greylist_attempts,
            hosts=hosts or [],
        )
        self.domains[name] = spec
        return spec

    def _require_stopped(self) -> None:
        if self._smtp is not None:
            raise RuntimeError("describe the mailnet before start()")

    # ---- ground truth
    def truth(self, address: str) -> EmailStatus:
        """What a perfect verifier says about `address` on this mailnet (slow banners are assumed to be
        slower than the verifier's timeout)."""
        local, _, domain = address.rpartition("@")
        spec = self.domains.get(domain.lower().encode("idna").decode("ascii"))
        if spec is None:
            return EmailStatus.INVALID  # NXDOMAIN
        answering = next((h for h in spec.hosts if not h.refuse and not h.banner_delay_s), None)
        state = "up" if answering is not None and not answering.block_sender else "down"
        if answering is not None and not local.isascii() and not answering.smtputf8:
            state = "down"  # the mailbox cannot even be named to this server
        return spec.truth(local, state)

    # ---- DNS zone
    def _zone(self, name: str) -> ZoneEntry | None:
        spec = self.domains.get(name)
        if spec is not None:
            if spec.dns == DnsShape.NXDOMAIN:
                return None
            if spec.dns == DnsShape.SILENT:
                return ZoneEntry(silent=True)
            if spec.dns == DnsShape.NULL_MX:
                return ZoneEntry(mx=[(0, ".")])
            if spec.dns == DnsShape.NO_RECORDS:
                return ZoneEntry()
            if spec.dns == DnsShape.A_ONLY:
                return ZoneEntry(a=[h.ip for h in spec.hosts])
            return ZoneEntry(mx=[(10 * (i + 1), h.name) for i, h in enumerate(spec.hosts)])
        host = self._hosts.get(name)
        if host is not None:
            return ZoneEntry(a=[host.ip])
        return None

    # ---- SMTP behaviour
    def _rcpt(self, host: str, peer: str, mail_from: str, local: str, domain: str) -> str:
        self.rcpt_log.append((host, f"{local}@{domain}"))
        spec = self.domains.get(domain)
        if spec is None or host not in {h.name for h in spec.hosts}:
            return "550 5.7.1 Relaying denied"
        if spec.greylist_attempts:
            seen = self._greylist_seen[(peer, mail_from.lower(), f"{local}@{domain}".lower())]
            now = time.monotonic()
            if len(seen) < spec.greylist_attempts or now - seen[0] < self.greylist_min_delay_s:
                seen.append(now)
                return "451 4.7.1 Greylisted, please try again later"
        state = spec.mailboxes.get(local.lower())
        if state == Mailbox.OK or (state is None and spec.accept_all):
            return "250 2.1.5 Recipient OK"
        if state == Mailbox.FULL:
            return "552 5.2.2 Mailbox full"
        if state == Mailbox.DISABLED:
            return "550 5.2.1 Mailbox disabled, not accepting messages"
        return f"550 5.1.1 <{local}@{domain}>: Recipient address rejected: User unknown"

    # ---- lifecycle
    def start(self) -> MailNet:
        self._dns = DnsServer(lambda name: self._zone(name))
        self._dns.start()
        self._smtp = SmtpCluster(list(self._hosts.values()), self._rcpt, latency_s=self.latency_s)
        try:
            self._smtp.start()
        except BaseException:
            self._dns.stop()
            raise
        return self

    def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
        if self._dns is not None:
            self._dns.stop()

    def __enter__(self) -> MailNet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def attach(self, dns_port: int, smtp_port: int) -> None:
        """Describe a twin of this mailnet that runs elsewhere (another process, same description):
        ground truth and `verifier_config` work here, recording stays with the running one."""
        self._remote = (dns_port, smtp_port)

    # ---- pointing a verifier here
    @property
    def dns_port(self) -> int:
        if self._remote is not None:
            return self._remote[0]
        assert self._dns is not None, "start() first"
        return self._dns.port

    @property
    def smtp_port(self) -> int:
        if self._remote is not None:
            return self._remote[1]
        assert self._smtp is not None, "start() first"
        return self._smtp.port

    def verifier_config(self, **overrides: Any) -> VerifierConfig:
        """Loopback DNS and SMTP, `.test` domains allowed, timeouts and backoff small for tests."""
        base = VerifierConfig(
            dns_nameservers=("127.0.0.1",),
            dns_port=self.dns_port,
            dns_timeout_s=1.0,
            smtp_port=self.smtp_port,
            helo_name="verifier.tributary.test",
            mail_from="probe@verifier.tributary.test",
            connect_timeout_s=1.0,
            command_timeout_s=2.0,
            temp_retries=2,
            retry_initial_wait_s=0.01,
            retry_max_wait_s=0.05,
            test_environment=True,
        )
        return replace(base, **overrides)

    # ---- what happened
    @property
    def wires(self) -> list[Wire]:
        assert self._smtp is not None
        return list(self._smtp.wires)

    def connections(self, host: str | None = None) -> int:
        return sum(1 for w in self.wires if host is None or w.host == host)

    def received(self, host: str | None = None) -> bytes:
        """Every byte any client sent (to `host`), connections separated by a blank line."""
        return b"\r\n\r\n".join(bytes(w.data) for w in self.wires if host is None or w.host == host)

    def commands(self, host: str | None = None) -> list[str]:
        lines: list[str] = []
        for wire in self.wires:
            if host is None or wire.host == host:
                lines.extend(line.decode("utf-8", "replace") for line in wire.lines if line)
        return lines

    @property
    def dns_queries(self) -> list[tuple[str, str]]:
        assert self._dns is not None
        return list(self._dns.queries)
