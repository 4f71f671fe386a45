"""Company names: the comparison key with legal-form suffixes removed ("Acme, Inc." -> "acme")."""

from __future__ import annotations

from functools import lru_cache

from core.normalize.text import fold

# Folded legal forms, as whole trailing words (so "S.A." folds to "s a" and is listed that way).
LEGAL_SUFFIXES: tuple[str, ...] = (
    "incorporated", "inc", "corporation", "corp", "company", "co", "limited", "ltd", "llc", "l l c", "llp",
    "lp", "plc", "gmbh", "gmbh co kg", "co kg", "kg", "ag", "sa", "s a", "sas", "s a s", "sarl", "s a r l",
    "sl", "s l", "srl", "s r l", "spa", "s p a", "bv", "b v", "nv", "n v", "pty", "pty ltd", "oy", "oyj",
    "ab", "as", "asa", "aps", "a s", "kk", "k k", "se", "sro", "s r o", "sp z o o", "pte", "pte ltd",
    "ltda", "sc",
)
# Longest first, so "pty ltd" goes before "ltd" leaves a dangling "pty".
_SUFFIXES_LONGEST_FIRST = sorted(LEGAL_SUFFIXES, key=len, reverse=True)


@lru_cache(maxsize=16_384)  # bulk files name the same companies over and over
def company_key(name: str | None) -> str:
    """Empty string for no name; a name that is only a legal form ("Inc") is kept as it is."""
    if not name:
        return ""
    key = fold(name.replace("&", " and "))
    if key.startswith("the "):
        key = key[4:]
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES_LONGEST_FIRST:
            if key.endswith(" " + suffix):
                key = key[: -len(suffix) - 1].rstrip()
                changed = True
                break
        # "Smith & Co" leaves "smith and" behind.
        if key.endswith(" and"):
            key = key[:-4].rstrip()
            changed = True
    return key
