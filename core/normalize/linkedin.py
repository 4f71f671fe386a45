"""LinkedIn profile URLs in one canonical form: https://www.linkedin.com/in/<slug>."""

from __future__ import annotations

import re
from urllib.parse import unquote

# Country (uk.), mobile (m.) and bare hosts; /in/<slug> with any trailing path, query or fragment.
_LINKEDIN = re.compile(r"^(?:https?://)?(?:[a-z]{1,3}\.)?linkedin\.com/in/([^/?#\s]+)/?", re.IGNORECASE)


def canonical_linkedin_url(url: str) -> str | None:
    """None when the text is not a LinkedIn profile URL. Slugs are case-insensitive on LinkedIn and
    may be percent-encoded, so both are normalised away."""
    match = _LINKEDIN.match(url.strip())
    if not match:
        return None
    slug = unquote(match.group(1)).strip().lower()
    if not slug:
        return None
    return f"https://www.linkedin.com/in/{slug}"
