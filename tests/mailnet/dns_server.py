"""A loopback DNS server (dnslib, UDP and TCP on one ephemeral port) serving the mailnet's zone."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import DNSHandler, TCPServer

TTL = 300


@dataclass
class ZoneEntry:
    """What the server knows about one name."""

    mx: list[tuple[int, str]] = field(default_factory=list)  # (preference, exchange); "." = Null MX
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    silent: bool = False  # never answer (the client times out)


class _QuietLogger:
    """dnslib's default logger prints every packet; tests want silence."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class _Resolver:
    def __init__(self, lookup: Callable[[str], ZoneEntry | None], queries: list[tuple[str, str]]) -> None:
        self._lookup = lookup
        self._queries = queries

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        qname = str(request.q.qname)
        name = qname.rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self._queries.append((name, qtype))
        reply = request.reply()
        entry = self._lookup(name)
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if entry.silent:
            raise DNSError("scripted silence")  # the handler logs it and sends nothing
        if qtype == "MX":
            for preference, exchange in entry.mx:
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MX(exchange, preference), ttl=TTL))
        elif qtype == "A":
            for ip in entry.a:
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(ip), ttl=TTL))
        elif qtype == "AAAA":
            for ip in entry.aaaa:
                reply.add_answer(RR(qname, QTYPE.AAAA, rdata=AAAA(ip), ttl=TTL))
        return reply  # an existing name without records of this type: NOERROR, empty answer


class _UdpServer(socketserver.UDPServer):
    """Answers datagrams one after another: an answer takes well under a millisecond, while dnslib's
    thread-per-datagram server spends more on threads than on DNS once hundreds of queries arrive."""

    allow_reuse_address = True


class DnsServer:
    """UDP and TCP on the same port of 127.0.0.1, each in a daemon thread; `stop` joins them."""

    def __init__(self, lookup: Callable[[str], ZoneEntry | None]) -> None:
        self.queries: list[tuple[str, str]] = []
        self._resolver = _Resolver(lookup, self.queries)
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.port = 0

    def start(self) -> None:
        for _ in range(50):
            udp = _UdpServer(("127.0.0.1", 0), DNSHandler)
            port = udp.server_address[1]
            try:
                tcp = TCPServer(("127.0.0.1", port), DNSHandler)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for the DNS server")
        self.port = port
        for server in (udp, tcp):
            server.resolver = self._resolver
            server.logger = _QuietLogger()
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="mailnet-dns"
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

