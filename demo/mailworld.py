"""The demo's mail internet on loopback: a DNS server and SMTP servers that answer for the demo
world's `.test` domains (demo/world.py's `mail_servers`, and the small demo's acme, globex and
initech), so that verifying and accessing demo people works offline, for ever, through the real
verifier speaking real DNS and SMTP.

Started in-process (by the CLI and `tributary serve`) only for the embedded SQLite demo: the
database holds the demo team and no TRIBUTARY_VERIFY_* setting points the verifier elsewhere.
Everything else the verifier asks about gets NXDOMAIN: the demo world never reaches the internet.

Behaviours per domain (as the test harness scripts them): normal mailboxes (550 5.1.1 for unknown
ones), catch-all, greylisting (451 first), greylisting for ever, a blocklisted sender (554 to MAIL
FROM, on a second loopback address), a refusing MX (a loopback address nothing listens on), an
A record instead of MX, and a Null MX.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from dnslib import MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import DNSServer
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from demo import world as demo_world
from storage.db import read_transaction
from storage.models import Team

log = logging.getLogger(__name__)

DEMO_TEAM = "demo"
MX_IP = "127.0.0.1"
BLOCKED_IP = "127.0.0.3"  # its server answers 554 to MAIL FROM
REFUSED_IP = "127.0.0.2"  # nothing listens here
TTL_S = 300
MAX_GREYLIST_ENTRIES = 100_000  # (client, sender, recipient) triples remembered; then forgotten at once
# The small demo's people (demo/seed.py): Jane and Ana have mailboxes, Globex accepts everything.
SMALL_DEMO_DOMAINS = (
    demo_world.DemoMailDomain("acme.test", "normal", "{first}.{last}", ("jane.doe",)),
    demo_world.DemoMailDomain("globex.test", "catch_all", "{first}", ("ravi",)),
    demo_world.DemoMailDomain("initech.test", "normal", "{first}.{last}", ("ana.lima",)),
)
# Settings that, when given, mean "verify somewhere else": then no demo mail world.
VERIFIER_SETTINGS = ("verify_dns_nameservers", "verify_dns_port", "verify_smtp_port", "verify_test_domains")


class _Directory:
    """Domain -> (behaviour, mailboxes). Built before the servers answer (the 50,000-person world
    takes a second or two), so that no first query times out waiting for it."""

    def __init__(self) -> None:
        described = [*SMALL_DEMO_DOMAINS, *demo_world.mail_servers()]
        self._domains = {d.domain: (d.behaviour, frozenset(d.mailboxes)) for d in described}

    def get(self, domain: str) -> tuple[str, frozenset[str]] | None:
        return self._domains.get(domain.lower())


class _Resolver:
    def __init__(self, directory: _Directory, blocked_ip: str) -> None:
        self.directory = directory
        self.blocked_ip = blocked_ip

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        qname = str(request.q.qname)
        name, qtype = qname.rstrip(".").lower(), QTYPE[request.q.qtype]
        reply = request.reply()
        host = name.removeprefix("mx.")
        domain, mx_host = self.directory.get(name), self.directory.get(host) if name.startswith("mx.") else None
        if domain is not None:
            behaviour = domain[0]
            if qtype == "MX" and behaviour == "null_mx":
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MX("."), ttl=TTL_S))
            elif qtype == "MX" and behaviour != "a_only":
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MX(f"mx.{name}", 10), ttl=TTL_S))
            elif qtype == "A" and behaviour == "a_only":
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(MX_IP), ttl=TTL_S))
        elif mx_host is not None:
            if qtype == "A":
                ip = {"refused": REFUSED_IP, "blocked": self.blocked_ip}.get(mx_host[0], MX_IP)
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(ip), ttl=TTL_S))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _QuietLogger:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class _Handler:
    def __init__(self, directory: _Directory, *, blocks_sender: bool) -> None:
        self.directory = directory
        self.blocks_sender = blocks_sender
        self.greylist_seen: set[tuple[str, str, str]] = set()

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list) -> str:
        if self.blocks_sender:
            return "554 5.7.1 Service unavailable; client host [127.0.0.1] blocked using a demo blocklist"
        envelope.mail_from = address
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list) -> str:
        local, _, domain = address.rpartition("@")
        described = self.directory.get(domain)
        if described is None:
            return "550 5.7.1 Relaying denied"
        behaviour, mailboxes = described
        seen = (session.peer[0] if session.peer else "", (envelope.mail_from or "").lower(), address.lower())
        if behaviour == "greylist_forever" or (behaviour == "greylist" and seen not in self.greylist_seen):
            if len(self.greylist_seen) >= MAX_GREYLIST_ENTRIES:
                self.greylist_seen.clear()
            self.greylist_seen.add(seen)
            return "451 4.7.1 Greylisted, please try again later"
        if behaviour == "catch_all" or local.lower() in mailboxes:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Recipient OK"
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


@dataclass
class DemoMail:
    """The running servers; `verifier_settings` points the verifier at them."""

    dns: DNSServer
    dns_port: int
    smtp_port: int
    loop: asyncio.AbstractEventLoop

    def verifier_settings(self) -> dict[str, Any]:
        return {
            "verify_dns_nameservers": [MX_IP],
            "verify_dns_port": self.dns_port,
            "verify_smtp_port": self.smtp_port,
            "verify_test_domains": True,
        }

    def stop(self) -> None:
        self.dns.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)


def wanted(settings: Any, engine: Engine) -> bool:
    """The embedded SQLite demo with no verifier settings of its own (and the demo mail world not
    switched off with TRIBUTARY_DEMO_MAIL=false)."""
    if not getattr(settings, "demo_mail", True) or not settings.database_url.startswith("sqlite"):
        return False
    if any(name in settings.model_fields_set for name in VERIFIER_SETTINGS):
        return False
    try:
        with read_transaction(engine) as conn:
            team = Team.__table__
            return conn.execute(select(team.c.id).where(team.c.name == DEMO_TEAM)).first() is not None
    except DBAPIError:
        return False  # not migrated yet: nothing to verify


def start() -> DemoMail:
    directory = _Directory()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="demo-mail-smtp").start()

    # One handler per server, not per connection: greylisting remembers across connections.
    normal, blocking = _Handler(directory, blocks_sender=False), _Handler(directory, blocks_sender=True)

    async def bind() -> tuple[int, str]:
        main = await loop.create_server(lambda: SMTP(normal, hostname="mx.demo.test", loop=loop), MX_IP, 0)
        port = main.sockets[0].getsockname()[1]
        try:
            await loop.create_server(lambda: SMTP(blocking, hostname="mx.demo.test", loop=loop), BLOCKED_IP, port)
            return port, BLOCKED_IP
        except OSError:  # a system with only 127.0.0.1: blocked domains are served normally
            return port, MX_IP

    smtp_port, blocked_ip = asyncio.run_coroutine_threadsafe(bind(), loop).result(timeout=30)
    dns = DNSServer(_Resolver(directory, blocked_ip), port=0, address=MX_IP, logger=_QuietLogger())
    dns.start_thread()
    dns_port = dns.server.server_address[1]
    log.info("demo mail world on loopback: DNS %s:%s, SMTP port %s", MX_IP, dns_port, smtp_port)
    return DemoMail(dns, dns_port, smtp_port, loop)
