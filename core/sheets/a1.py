"""A1 notation: column letters and selection ranges (`A1:F200`), checked, as plain numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidInput

MAX_COLUMNS = 18_278  # ZZZ: the Sheets grid's widest
_RANGE = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})(?::\$?([A-Za-z]{1,3})\$?(\d{1,7}))?$")


def column_index(letter: str) -> int:
    """`A` -> 0, `Z` -> 25, `AA` -> 26."""
    letter = (letter or "").strip().upper()
    if not letter.isalpha() or not letter.isascii() or len(letter) > 3:
        raise InvalidInput(f"column {letter!r}: not a column letter (A, B, ..., AA, ...)")
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch) - 64)
    if n > MAX_COLUMNS:
        raise InvalidInput(f"column {letter!r}: past the grid's last column")
    return n - 1


def column_letter(index: int) -> str:
    """0 -> `A`, 26 -> `AA`."""
    if index < 0:
        raise InvalidInput(f"column number {index}: must be 0 or more")
    out = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


@dataclass(frozen=True)
class GridRange:
    """A selection: rows first_row..last_row (1-based) and columns first_col..last_col (0-based)."""

    first_row: int
    last_row: int
    first_col: int
    last_col: int

    @property
    def rows(self) -> int:
        return self.last_row - self.first_row + 1

    @property
    def letters(self) -> list[str]:
        return [column_letter(i) for i in range(self.first_col, self.last_col + 1)]

    def a1(self) -> str:
        return f"{column_letter(self.first_col)}{self.first_row}:{column_letter(self.last_col)}{self.last_row}"


def parse_range(text: str, field: str = "sheet.range_a1") -> GridRange:
    m = _RANGE.match((text or "").strip())
    if not m:
        raise InvalidInput(f"{field}: {text!r} is not a selection like A1:F200; select the rows to enrich", field=field)
    c1, r1, c2, r2 = m.group(1), int(m.group(2)), m.group(3) or m.group(1), int(m.group(4) or m.group(2))
    if r1 < 1 or r2 < 1:
        raise InvalidInput(f"{field}: rows are numbered from 1", field=field)
    a, b = column_index(c1), column_index(c2)
    return GridRange(min(r1, r2), max(r1, r2), min(a, b), max(a, b))


def quoted(sheet_name: str, a1: str) -> str:
    """`'My sheet'!A1:B2` (quotes doubled inside the name, as Sheets wants)."""
    return "'" + sheet_name.replace("'", "''") + "'!" + a1
