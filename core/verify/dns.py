"""Where a domain's mail goes: MX in preference order, RFC 7505 Null MX, the A/AAAA fallback.

Asynchronous (dnspython's asyncresolver) with a TTL cache and in-flight de-duplication, so a batch of
thousands of addresses resolves each domain once. A timeout is reported as such (the caller makes it
`unknown`), never as a missing domain.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from core.errors import check
from core.verify.config import VerifierConfig
from core.verify.reasons import Reason


@dataclass(frozen=True)
class MailHost:
    name: str  # the MX exchange, or the domain itself for the implicit (A/AAAA) route
    preference: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class MailRoute:
    domain: str  # ASCII (A-label) form
    hosts: tuple[MailHost, ...] = ()  # preference order, only hosts with at least one address
    implicit: bool = False  # no MX: the domain's own A/AAAA (RFC 5321 section 5.1)
    problem: Reason | None = None  # DOMAIN_NOT_FOUND, NULL_MX, NO_MX, DNS_TIMEOUT or DNS_ERROR
    detail: str | None = None


class _Lookup:
    """One DNS answer or the reason there is none, with how long it may be cached."""

    __slots__ = ("records", "ttl", "problem", "detail")

    def __init__(self, records: list, ttl: float, problem: Reason | None = None, detail: str | None = None):
        self.records = records
        self.ttl = ttl
        self.problem = problem
        self.detail = detail


_TRANSIENT = (Reason.DNS_TIMEOUT, Reason.DNS_ERROR)


class MailResolver:
    def __init__(self, config: VerifierConfig) -> None:
        self._config = config
        if config.dns_nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = list(config.dns_nameservers)
        else:
            resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
        resolver.port = config.dns_port
        resolver.lifetime = config.dns_timeout_s
        # Per-attempt timeout: leave room for a retry inside the lifetime when a UDP packet is lost.
        resolver.timeout = max(config.dns_timeout_s / 2, 0.05)
        self._resolver = resolver
        self._cache: dict[str, tuple[float, MailRoute]] = {}
        # Semaphore and in-flight lookups belong to one event loop; the sync wrapper makes new loops.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limit: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future[MailRoute]] = {}
        self.lookups = 0  # DNS queries sent (for tests and benchmarks)

    def _loop_state(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._limit is None:
            self._loop = loop
            self._limit = asyncio.Semaphore(self._config.dns_concurrency)
            self._inflight = {}
        return self._limit

    def cached(self, domain: str) -> MailRoute | None:
        entry = self._cache.get(domain)
        if entry is None:
            return None
        expires, route = entry
        if time.monotonic() >= expires:
            del self._cache[domain]
            return None
        return route

    async def route(self, domain: str) -> MailRoute:
        """The mail route of an ASCII domain; concurrent callers for one domain share one lookup."""
        domain = domain.lower().rstrip(".")
        hit = self.cached(domain)
        if hit is not None:
            return hit
        self._loop_state()
        pending = self._inflight.get(domain)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MailRoute] = asyncio.get_running_loop().create_future()
        self._inflight[domain] = future
        try:
            route, ttl = await self._resolve_route(domain)
            if route.problem not in _TRANSIENT:
                self._cache[domain] = (time.monotonic() + ttl, route)
            future.set_result(route)
            return route
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(domain, None)

    async def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> _Lookup:
        negative_ttl = self._config.dns_negative_ttl_s
        async with self._loop_state():
            self.lookups += 1
            try:
                answer = await self._resolver.resolve(name, rdtype, search=False)
            except dns.resolver.NXDOMAIN:
                return _Lookup([], negative_ttl, Reason.DOMAIN_NOT_FOUND, f"{name} does not exist")
            except dns.resolver.NoAnswer:
                return _Lookup([], negative_ttl, Reason.NO_MX, f"no {rdtype.name} record for {name}")
            except dns.exception.Timeout:
                return _Lookup([], 0, Reason.DNS_TIMEOUT, f"DNS timeout looking up {rdtype.name} {name}")
            except (dns.resolver.NoNameservers, dns.resolver.YXDOMAIN, dns.exception.DNSException) as exc:
                return _Lookup([], 0, Reason.DNS_ERROR, f"DNS error looking up {rdtype.name} {name}: {exc}")
        rrset = answer.rrset
        if rrset is None:
            return _Lookup([], negative_ttl, Reason.NO_MX, f"no {rdtype.name} record for {name}")
        return _Lookup(list(rrset), float(rrset.ttl))

    async def _addresses(self, name: str) -> _Lookup:
        lookups = [self._query(name, dns.rdatatype.A)]
        if self._config.resolve_ipv6:
            lookups.append(self._query(name, dns.rdatatype.AAAA))
        results = await asyncio.gather(*lookups)
        addresses = [rdata.address for result in results for rdata in result.records]
        if addresses:
            return _Lookup(addresses, min(r.ttl for r in results if r.records))
        # Report the most telling failure: a timeout beats "no record".
        for reason in (Reason.DNS_TIMEOUT, Reason.DNS_ERROR, Reason.DOMAIN_NOT_FOUND, Reason.NO_MX):
            for result in results:
                if result.problem == reason:
                    return result
        return results[0]

    async def _resolve_route(self, domain: str) -> tuple[MailRoute, float]:
        max_ttl = self._config.dns_max_ttl_s
        mx = await self._query(domain, dns.rdatatype.MX)
        if mx.problem == Reason.NO_MX:
            # No MX: the domain itself is the mail host (implicit MX), if it has an address.
            own = await self._addresses(domain)
            if own.problem is not None:
                problem = Reason.NO_MX if own.problem == Reason.DOMAIN_NOT_FOUND else own.problem
                detail = f"{domain} has no MX and no address record" if problem == Reason.NO_MX else own.detail
                return MailRoute(domain, problem=problem, detail=detail), min(own.ttl, max_ttl)
            host = MailHost(domain, 0, tuple(own.records))
            return MailRoute(domain, (host,), implicit=True), min(own.ttl, max_ttl)
        if mx.problem is not None:
            return MailRoute(domain, problem=mx.problem, detail=mx.detail), min(mx.ttl, max_ttl)

        records = sorted(mx.records, key=lambda r: (r.preference, r.exchange.to_text().lower()))
        real = [r for r in records if r.exchange != dns.name.root]
        if not real:
            # RFC 7505: a single "0 ." MX says the domain accepts no mail at all.
            return MailRoute(domain, problem=Reason.NULL_MX, detail=f"{domain} publishes a Null MX"), min(
                mx.ttl, max_ttl
            )
        names: list[tuple[str, int]] = []
        for record in real:
            name = record.exchange.to_text(omit_final_dot=True).lower()
            if name not in (n for n, _ in names):
                names.append((name, record.preference))
        names = names[: self._config.max_mx_hosts]
        lookups = await asyncio.gather(*(self._addresses(name) for name, _ in names))
        hosts = tuple(
            MailHost(name, pref, tuple(lookup.records))
            for (name, pref), lookup in zip(names, lookups, strict=True)
            if lookup.records
        )
        ttl = min([mx.ttl, *(lookup.ttl for lookup in lookups if lookup.records)])
        if hosts:
            return MailRoute(domain, hosts), min(ttl, max_ttl)
        if any(lookup.problem in _TRANSIENT for lookup in lookups):
            first = next(lookup for lookup in lookups if lookup.problem in _TRANSIENT)
            check(first.problem is not None, "a transient lookup names its problem")
            return MailRoute(domain, problem=first.problem, detail=first.detail), 0.0
        detail = f"no MX host of {domain} has an address"
        return MailRoute(domain, problem=Reason.NO_MX, detail=detail), min(mx.ttl, max_ttl)
