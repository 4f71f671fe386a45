"""Person names: first/last extraction with nameparser and the folded keys matching compares."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from nameparser import HumanName

from core.normalize.text import clean, fold


@dataclass(frozen=True)
class PersonName:
    first_name: str | None
    last_name: str | None
    full_name: str | None
    # Folded comparison keys ("josé" -> "jose"); empty string when the part is missing.
    first_key: str
    last_key: str
    full_key: str


# Bulk files repeat names (the same people, common first names); nameparser costs ~0.5 ms a call.
@lru_cache(maxsize=65_536)
def parse_name(full_name: str | None = None, first_name: str | None = None, last_name: str | None = None) -> PersonName:
    """Split or join a name. Explicit first/last win over what nameparser reads from the full name;
    titles (Dr.), suffixes (Jr.) and "Last, First" order are handled by nameparser."""
    first, last, full = clean(first_name), clean(last_name), clean(full_name)
    if full and not (first and last):
        parsed = HumanName(full)
        first = first or clean(parsed.first)
        last = last or clean(parsed.last)
    if not full:
        full = " ".join(part for part in (first, last) if part) or None
    first_key = fold(first) if first else ""
    last_key = fold(last) if last else ""
    full_key = " ".join(part for part in (first_key, last_key) if part) or (fold(full) if full else "")
    return PersonName(first, last, full, first_key, last_key, full_key)
