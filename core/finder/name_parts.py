"""A person's first and last name as the ASCII tokens mail administrators build local parts from:
core.normalize.names folds them ("José O'Brien-Smith" -> "jose", "o brien smith"), and what is not
an ASCII letter or digit is dropped ("obriensmith"), since local parts rarely carry it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.normalize.names import parse_name

_NOT_ASCII_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class NameTokens:
    first: str
    last: str


def address_tokens(first_name: str | None, last_name: str | None, full_name: str | None = None) -> NameTokens | None:
    """The tokens, from first/last when both are known, else parsed out of the full name; None when
    either part has nothing an address could be built from."""
    name = parse_name(full_name, first_name, last_name)
    first = _NOT_ASCII_ALNUM.sub("", name.first_key)
    last = _NOT_ASCII_ALNUM.sub("", name.last_key)
    if not first or not last:
        return None
    return NameTokens(first, last)
