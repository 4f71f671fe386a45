"""Which email provider a company domain uses, from its MX hosts or a message's transport headers.

Company technology in aggregate: the answer is about a domain, never a person. MX is looked up
with dnspython against the verifier's nameservers (TRIBUTARY_VERIFY_DNS_*), so tests reach a
loopback DNS and production the configured resolvers.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import Message

import dns.exception
import dns.resolver

from core.verify.config import VerifierConfig

MX_TIMEOUT_S = 3.0
MAX_RECEIVED_HEADERS = 10

# (provider, suffixes of MX host names)
_MX_SUFFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("google", ("google.com", "googlemail.com")),
    ("microsoft", ("protection.outlook.com", "outlook.com", "hotmail.com")),
    ("zoho", ("zoho.com", "zoho.eu", "zohomail.com")),
    ("proofpoint", ("pphosted.com", "ppe-hosted.com")),
    ("mimecast", ("mimecast.com",)),
    ("barracuda", ("barracudanetworks.com",)),
    ("fastmail", ("messagingengine.com",)),
    ("amazon_ses", ("amazonaws.com", "amazonses.com")),
    ("yahoo", ("yahoodns.net",)),
)
# (provider, header names whose presence names it)
_HEADER_MARKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("google", ("x-gm-message-state", "x-google-smtp-source", "x-gm-features")),
    ("microsoft", ("x-ms-exchange-organization-authas", "x-ms-exchange-crosstenant-id", "x-ms-publictraffictype")),
    ("zoho", ("x-zohomail-owner", "x-zoho-virus-status")),
    ("mimecast", ("x-mc-unique",)),
)


def provider_for_hosts(hosts: Iterable[str]) -> str | None:
    for host in hosts:
        name = host.lower().rstrip(".")
        for provider, suffixes in _MX_SUFFIXES:
            if any(name == s or name.endswith("." + s) for s in suffixes):
                return provider
    return None


def provider_from_headers(message: Message) -> str | None:
    """The sender's provider from X- headers it stamps, or from the first Received hops."""
    present = {key.lower() for key in message.keys()}
    for provider, marks in _HEADER_MARKS:
        if present.intersection(marks):
            return provider
    hops = []
    for value in (message.get_all("Received") or [])[:MAX_RECEIVED_HEADERS]:
        text = str(value).lower()
        if " by " in f" {text}":
            hops.append(text.split(" by ", 1)[-1].split()[0] if " by " in text else "")
    return provider_for_hosts(h for h in hops if h)


class MxLookup:
    def __init__(self, config: VerifierConfig) -> None:
        if config.dns_nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = list(config.dns_nameservers)
        else:
            resolver = dns.resolver.Resolver()
        resolver.port = config.dns_port
        resolver.lifetime = MX_TIMEOUT_S
        self._resolver = resolver

    def provider(self, domain: str) -> str | None:
        """The provider behind the domain's MX hosts; None when unknown or unresolvable."""
        try:
            answer = self._resolver.resolve(domain, "MX")
        except (dns.exception.DNSException, OSError):
            return None
        return provider_for_hosts(str(r.exchange) for r in sorted(answer, key=lambda r: r.preference))


__all__ = ["MxLookup", "provider_for_hosts", "provider_from_headers"]
