"""A1 notation: column letters, sheet-qualified ranges parsed and written back."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from core.errors import InvalidInput

# Google Sheets' grid limits: columns up to ZZZ (18,278), and 10 million cells per spreadsheet.
MAX_COLUMNS = 18278
MAX_ROWS = 10_000_000

_CELL = re.compile(r"^([A-Za-z]{0,3})([0-9]{0,8})$")


def column_letter(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA."""
    if not 1 <= index <= MAX_COLUMNS:
        raise InvalidInput(f"column number {index} is outside A..ZZZ")
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """A -> 1, Z -> 26, AA -> 27 (case-insensitive)."""
    if not letters or len(letters) > 3 or not letters.isascii() or not letters.isalpha():
        raise InvalidInput(f"{letters!r} is not a column letter")
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - ord("A") + 1
    return index


def quote_sheet(title: str) -> str:
    """A sheet title as A1 notation needs it: always quoted, quotes doubled ('It''s')."""
    return "'" + title.replace("'", "''") + "'"


@dataclass(frozen=True)
class A1Range:
    """A rectangle of one sheet, 1-based and inclusive; None is open-ended (A:C, 2:5, A2:C)."""

    sheet: str | None
    start_col: int | None
    start_row: int | None
    end_col: int | None
    end_row: int | None

    def to_a1(self) -> str:
        start = _cell(self.start_col, self.start_row)
        end = _cell(self.end_col, self.end_row)
        cells = start if (self.end_col, self.end_row) == (None, None) else f"{start}:{end}"
        return cells if self.sheet is None else f"{quote_sheet(self.sheet)}!{cells}"

    def rows(self, first: int, last: int) -> A1Range:
        """Rows first..last (1-based, inclusive) of this range, same columns."""
        return replace(self, start_row=first, end_row=last)


def _cell(col: int | None, row: int | None) -> str:
    return (column_letter(col) if col else "") + (str(row) if row else "")


def _split_sheet(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        # A quoted name ends at the first single quote that is not doubled.
        end = 1
        while (end := text.find("'", end)) != -1 and text[end : end + 2] == "''":
            end += 2
        rest = text[end + 1 :] if end != -1 else None
        if end == -1 or end == 1 or (rest and not rest.startswith("!")):
            raise InvalidInput(f"{text!r} is not an A1 range (e.g. 'Sheet 1'!A1:C10)")
        return text[1:end].replace("''", "'"), (rest or "")[1:]
    if "!" not in text:
        return None, text
    sheet, _, cells = text.rpartition("!")
    if not sheet:
        raise InvalidInput(f"the A1 range {text!r} has an empty sheet name")
    return sheet, cells


def _parse_cell(text: str, whole: str) -> tuple[int | None, int | None]:
    match = _CELL.match(text.strip())
    if not match or not (match.group(1) or match.group(2)):
        raise InvalidInput(f"{whole!r} is not an A1 range (e.g. 'Sheet 1'!A1:C10)")
    col = column_index(match.group(1)) if match.group(1) else None
    row = int(match.group(2)) if match.group(2) else None
    if row is not None and not 1 <= row <= MAX_ROWS:
        raise InvalidInput(f"row {row} in {whole!r} is outside the grid")
    return col, row


def parse_range(text: str) -> A1Range:
    """`'Sheet 1'!A1:C10`, `Sheet1!A:C`, `A2:C`, `B5` (a single cell) -> A1Range."""
    sheet, cells = _split_sheet(text.strip())
    if not cells:
        return A1Range(sheet, None, None, None, None)  # the whole sheet
    first, sep, second = cells.partition(":")
    start_col, start_row = _parse_cell(first, text)
    if not sep:
        return A1Range(sheet, start_col, start_row, start_col, start_row)
    end_col, end_row = _parse_cell(second, text)
    return A1Range(sheet, start_col, start_row, end_col, end_row)
