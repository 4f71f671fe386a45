"""Unicode folding: the comparison form of free text ("José Müller" and "JOSE MULLER" fold alike)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters that carry no combining mark to strip, so NFKD alone would leave them as they are.
_NON_DECOMPOSING = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ı": "i",
        "ß": "ss",
        "ẞ": "ss",
    }
)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


# Bulk files repeat names and companies: the short texts (names, companies) are folded once each.
FOLD_CACHE_MAX_CHARS = 255
FOLD_CACHE_SIZE = 65_536


def fold(text: str) -> str:
    """Lower-case, accents removed, punctuation turned into single spaces, trimmed."""
    if len(text) <= FOLD_CACHE_MAX_CHARS:
        return _fold_cached(text)
    return _fold(text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_NON_DECOMPOSING))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


_fold_cached = lru_cache(maxsize=FOLD_CACHE_SIZE)(_fold)


def clean(text: str | None) -> str | None:
    """Display form: whitespace collapsed, control characters turned into spaces; None for blank input."""
    if text is None:
        return None
    # isprintable() is False for every control/format character (and for tabs/newlines, which the
    # slow path keeps as spaces); the common clean cell skips the per-character scan.
    if not text.isprintable():
        text = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf") else " " for ch in text)
    collapsed = " ".join(unicodedata.normalize("NFC", text).split())
    return collapsed or None
