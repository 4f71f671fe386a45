"""DNS step against the mailnet's DNS server: routes, Null MX, fallback, failures, cache."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.message

from core.verify.dns import MailResolver, MailRoute
from core.verify.reasons import Reason
from tests.mailnet.net import MailNet


def route(net: MailNet, domain: str, **overrides: object) -> MailRoute:
    async def run() -> MailRoute:
        return await MailResolver(net.verifier_config(**overrides)).route(domain)

    return asyncio.run(run())


def test_mx_hosts_in_preference_order_with_addresses(mailnet: MailNet) -> None:
    r = route(mailnet, "backup.test")
    assert r.problem is None and not r.implicit
    assert [(h.name, h.preference) for h in r.hosts] == [("mx1.backup.test", 10), ("mx2.backup.test", 20)]
    assert all(h.addresses and h.addresses[0].startswith("127.0.") for h in r.hosts)


def test_no_mx_falls_back_to_the_domains_own_address(mailnet: MailNet) -> None:
    r = route(mailnet, "amx.test")
    assert r.implicit and [h.name for h in r.hosts] == ["amx.test"]


def test_failures(mailnet: MailNet) -> None:
    assert route(mailnet, "nullmx.test").problem == Reason.NULL_MX
    assert route(mailnet, "norecords.test").problem == Reason.NO_MX
    assert route(mailnet, "missing.test").problem == Reason.DOMAIN_NOT_FOUND
    assert route(mailnet, "dnstimeout.test", dns_timeout_s=0.2).problem == Reason.DNS_TIMEOUT


def test_a_dead_dns_server_is_a_timeout_not_a_missing_domain(mailnet: MailNet) -> None:
    # Nothing listens on this port of 127.0.0.1 (we hold it bound without answering).
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert route(mailnet, "known.test", dns_port=port, dns_timeout_s=0.2).problem == Reason.DNS_TIMEOUT


def test_routes_are_cached_but_timeouts_are_not(mailnet: MailNet) -> None:
    resolver = MailResolver(mailnet.verifier_config(dns_timeout_s=0.5))

    async def run() -> None:
        for _ in range(3):
            await resolver.route("known.test")
            await resolver.route("missing.test")
            await resolver.route("dnstimeout.test")
        # Concurrent lookups of one domain share one query.
        await asyncio.gather(*(resolver.route("backup.test") for _ in range(10)))

    asyncio.run(run())
    queries = mailnet.dns_queries
    assert queries.count(("known.test", "MX")) == 1
    assert queries.count(("missing.test", "MX")) == 1
    assert queries.count(("dnstimeout.test", "MX")) >= 3
    assert queries.count(("backup.test", "MX")) == 1
    assert resolver.cached("known.test") is not None and resolver.cached("dnstimeout.test") is None


def test_mailnet_dns_answers_over_tcp_too(mailnet: MailNet) -> None:
    query = dns.message.make_query("known.test", "MX")
    response = asyncio.run(dns.asyncquery.tcp(query, "127.0.0.1", port=mailnet.dns_port, timeout=2))
    assert [str(rr.exchange) for rr in response.answer[0]] == ["mx.known.test."]
