"""Domains and websites -> the registrable domain ("https://www.shop.acme.co.uk/x" -> "acme.co.uk").

tldextract runs on its bundled Public Suffix List snapshot only: `suffix_list_urls=()` means no URL is
ever fetched (tldextract.suffix_list.find_first_response loops over no URLs and falls back to the
packaged `.tld_set_snapshot`), and `cache_dir=None` disables its disk cache (DiskCache.enabled is
False, so run_and_cache calls straight through and writes nothing).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import idna
import tldextract

from core.errors import InvalidInput

MAX_DOMAIN_INPUT_LENGTH = 2048
# RFC 2606/6761 reserved names, which the demo world and tests use; they are not on the PSL.
RESERVED_SUFFIXES: tuple[str, ...] = ("test", "example", "invalid", "localhost")

_EXTRACT = tldextract.TLDExtract(
    cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True, extra_suffixes=RESERVED_SUFFIXES
)


# A bulk file names the same few thousand companies over and over.
@lru_cache(maxsize=65_536)
def registrable_domain(text: str | None) -> str | None:
    """None for blank input. Raises InvalidInput for text that names no registrable domain (an IP,
    a bare public suffix, a single word). International names come back in ASCII (punycode) form."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if len(raw) > MAX_DOMAIN_INPUT_LENGTH:
        raise InvalidInput(f"domain: longer than {MAX_DOMAIN_INPUT_LENGTH} characters")
    if "@" in raw and "/" not in raw:
        raw = raw.rsplit("@", 1)[1]
    host = _host(raw)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidInput(f"domain: {text.strip()[:80]!r} is an IP address, not a domain")
    result = _EXTRACT(host)
    if not result.domain or not result.suffix:
        raise InvalidInput(f"domain: {text.strip()[:80]!r} has no registrable domain")
    registrable = f"{result.domain}.{result.suffix}".lower()
    try:
        return idna.encode(registrable, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"domain: {text.strip()[:80]!r} is not a valid domain name ({exc})") from exc


def _host(raw: str) -> str:
    """The host part of a URL or a bare host, without port, path or trailing dot."""
    text = raw.split("://", 1)[1] if "://" in raw else raw
    for sep in "/?#":
        text = text.split(sep, 1)[0]
    text = text.rsplit("@", 1)[-1]  # user:pass@host
    if not text.startswith("[") and text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".").lower()
