"""Scripted SMTP servers (aiosmtpd), one per simulated MX host, all on one asyncio loop in a thread.

Every host listens on its own loopback address (127.0.x.y) and the same port, so the verifier is
pointed at the harness only by configuration (DNS server and SMTP port). Every byte a client sends is
recorded per host, so tests can prove what did or did not reach the wire.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class HostSpec:
    name: str
    ip: str
    refuse: bool = False  # nothing listens: connection refused
    banner_delay_s: float = 0.0  # on top of the per-command latency
    block_sender: bool = False  # 554 5.7.1 to MAIL FROM (our IP "is on a blocklist")
    starttls: bool = False
    smtputf8: bool = True


@dataclass
class Wire:
    """What one client connection sent."""

    host: str
    data: bytearray = field(default_factory=bytearray)

    @property
    def lines(self) -> list[bytes]:
        return bytes(self.data).split(b"\r\n")


# (host, peer ip, mail_from, rcpt local part, rcpt domain) -> the reply line to send
RcptPolicy = Callable[[str, str, str, str, str], str]


class _Handler:
    def __init__(self, cluster: SmtpCluster, host: HostSpec) -> None:
        self._cluster = cluster
        self._host = host

    async def _lag(self) -> None:
        if self._cluster.latency_s:
            await asyncio.sleep(self._cluster.latency_s)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        await self._lag()
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._lag()
        if self._host.block_sender:
            return "554 5.7.1 Service unavailable; client host [127.0.0.1] blocked using zen.spamhaus.org"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._lag()
        local, _, domain = address.rpartition("@")
        peer = session.peer[0] if session.peer else ""
        reply = self._cluster.rcpt_policy(self._host.name, peer, envelope.mail_from or "", local, domain.lower())
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._lag()
        return "221 2.0.0 Bye"


_SIMPLE_PATH = re.compile(r"<([^<>\"\\\s()\[\]]+@[^<>\"\\\s()\[\]]+)>\s*(.*)")


class _Server(SMTP):
    def __init__(self, cluster: SmtpCluster, host: HostSpec, **kwargs: Any) -> None:
        super().__init__(_Handler(cluster, host), **kwargs)
        self._cluster = cluster
        self._spec = host
        self._wire = Wire(host.name)
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and self.transport is None:  # not the STARTTLS upgrade
            self._cluster.wires.append(self._wire)
            self._cluster.transports.add(transport)
            self._cluster.opened(self._spec.name)
            self._open = True
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open:  # aiosmtpd may call this twice around a failed STARTTLS
            self._open = False
            self._cluster.closed(self._spec.name)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._wire.data.extend(data)
        super().data_received(data)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every path with the email package's RFC 5322 header parser, which makes the
        # harness (not the verifier under test) the bottleneck of a benchmark; plain <a@b> paths,
        # i.e. everything a verifier sends, are taken apart directly.
        match = _SIMPLE_PATH.fullmatch(arg.strip())
        if match is not None:
            return match.group(1), match.group(2)
        return super()._getaddr(arg)

    async def _handle_client(self) -> None:
        delay = self._spec.banner_delay_s + self._cluster.latency_s
        if delay:
            await asyncio.sleep(delay)
        await super()._handle_client()


class SmtpCluster:
    """All the mailnet's SMTP hosts. `start` binds them on one port; `stop` closes everything."""

    def __init__(self, hosts: list[HostSpec], rcpt_policy: RcptPolicy, *, latency_s: float = 0.0) -> None:
        self.hosts = hosts
        self.rcpt_policy = rcpt_policy
        self.latency_s = latency_s
        self.port = 0
        self.wires: list[Wire] = []
        self.transports: set[asyncio.BaseTransport] = set()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # most connections open at once, per host
        self.peak_total = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="mailnet-smtp")
        self._servers: list[asyncio.base_events.Server] = []
        self._tls: ssl.SSLContext | None = None

    # Called on the server loop's thread only.
    def opened(self, host: str) -> None:
        self.active[host] = self.active.get(host, 0) + 1
        self.peak[host] = max(self.peak.get(host, 0), self.active[host])
        self.peak_total = max(self.peak_total, sum(self.active.values()))

    def closed(self, host: str) -> None:
        self.active[host] = max(0, self.active.get(host, 0) - 1)

    def start(self) -> None:
        if any(h.starttls for h in self.hosts):
            self._tls = _self_signed_context()
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._bind_all(), self._loop).result(timeout=30)

    async def _bind_all(self) -> None:
        listening = [h for h in self.hosts if not h.refuse]
        for _ in range(50):
            port = 0
            servers: list[asyncio.base_events.Server] = []
            try:
                for host in listening:
                    server = await self._loop.create_server(self._factory(host), host=host.ip, port=port)
                    port = port or server.sockets[0].getsockname()[1]
                    servers.append(server)
            except OSError as exc:
                for server in servers:
                    server.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            if not port:  # every host refuses: still pick a port nothing listens on
                probe = await self._loop.create_server(asyncio.Protocol, host="127.0.0.1", port=0)
                port = probe.sockets[0].getsockname()[1]
                probe.close()
            self.port = port
            self._servers = servers
            return
        raise RuntimeError("no port free on every mailnet address")

    def _factory(self, host: HostSpec) -> Callable[[], _Server]:
        def make() -> _Server:
            return _Server(
                self,
                host,
                hostname=host.name,
                ident="mailnet",
                enable_SMTPUTF8=host.smtputf8,
                tls_context=self._tls if host.starttls else None,
                loop=self._loop,
            )

        return make

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close_all() -> None:
            for server in self._servers:
                server.close()
            for transport in list(self.transports):
                transport.abort()
            for server in self._servers:
                await server.wait_closed()
            # Let aborted connections' handler tasks finish unwinding.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _self_signed_context() -> ssl.SSLContext:
    """A throwaway certificate for STARTTLS hosts (needs the `cryptography` package)."""
    import datetime
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailnet.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(cert_path, key_path)
    return context

