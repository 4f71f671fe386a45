"""The spreadsheets behind the loopback Sheets server: grids of cells, A1 ranges, Google's rules.

Written independently of sheets_addon/a1.py on purpose, so a parsing mistake there is caught here.
Rules kept as Google keeps them:
- a range without a sheet name means the first sheet; `'It''s'!A1` quotes a name; `A2:C`, `A:C`,
  `2:5` and a bare sheet name are open-ended and end at the grid's edge;
- read answers drop trailing empty cells of each row and trailing empty rows, and name the range
  they answer, clipped to the grid (`Sheet1!A1:C1000` for `Sheet1!A:C`);
- a write must stay inside the grid (400 "exceeds grid limits") and inside its range when the range
  has two corners; a single cell anchors values of any size;
- `RAW` stores what is sent; `USER_ENTERED` turns a string starting with `=` into a formula (its shown
  value is left empty: this server does not compute), and numeric-looking strings lose leading zeros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26
_CELL = re.compile(r"^([A-Z]*)([0-9]*)$")
_PLAIN_SHEET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BadRange(ValueError):
    """A range Google would refuse with 400 INVALID_ARGUMENT; the message is Google's."""


def letters_to_column(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + (ord(char) - 64)
    return number


def column_to_letters(number: int) -> str:
    out = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        out = chr(65 + rest) + out
    return out


def sheet_prefix(title: str) -> str:
    """How Google names a sheet in the ranges it answers: quoted unless a plain word."""
    if _PLAIN_SHEET_NAME.match(title) and not re.match(r"^[A-Za-z]{1,3}[0-9]+$", title):
        return title
    return "'" + title.replace("'", "''") + "'"


@dataclass
class Cell:
    value: str = ""  # what FORMATTED_VALUE shows
    formula: str | None = None  # set only when USER_ENTERED (or a test) made the cell a formula


@dataclass
class Sheet:
    sheet_id: int
    title: str
    row_count: int = DEFAULT_ROWS
    column_count: int = DEFAULT_COLUMNS
    rows: list[list[Cell]] = field(default_factory=list)  # only as many rows as have been touched

    def cell(self, row: int, col: int) -> Cell:
        """The cell at 1-based (row, col), created empty if needed."""
        while len(self.rows) < row:
            self.rows.append([])
        line = self.rows[row - 1]
        while len(line) < col:
            line.append(Cell())
        return line[col - 1]

    def peek(self, row: int, col: int) -> Cell | None:
        if row > len(self.rows) or col > len(self.rows[row - 1]):
            return None
        return self.rows[row - 1][col - 1]

    def properties(self, index: int) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count},
        }


@dataclass(frozen=True)
class Rect:
    """A resolved range: 1-based inclusive bounds inside one sheet."""

    sheet: Sheet
    top: int
    left: int
    bottom: int
    right: int
    anchored: bool  # a single cell given: values may extend past it

    def a1(self) -> str:
        start = f"{column_to_letters(self.left)}{self.top}"
        end = f"{column_to_letters(self.right)}{self.bottom}"
        cells = start if (self.top, self.left) == (self.bottom, self.right) else f"{start}:{end}"
        return f"{sheet_prefix(self.sheet.title)}!{cells}"


def _split(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        end = 1
        while True:
            end = text.find("'", end)
            if end == -1:
                raise BadRange(f"Unable to parse range: {text}")
            if text[end : end + 2] == "''":
                end += 2
                continue
            break
        name = text[1:end].replace("''", "'")
        rest = text[end + 1 :]
        if rest and not rest.startswith("!"):
            raise BadRange(f"Unable to parse range: {text}")
        return name, rest[1:]
    if "!" in text:
        name, _, cells = text.partition("!")
        return name, cells
    return None, text


def _corner(text: str, whole: str) -> tuple[int | None, int | None]:
    match = _CELL.match(text.upper())
    if not match or not text:
        raise BadRange(f"Unable to parse range: {whole}")
    col = letters_to_column(match.group(1)) if match.group(1) else None
    row = int(match.group(2)) if match.group(2) else None
    if row == 0:
        raise BadRange(f"Unable to parse range: {whole}")
    return col, row


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    sheets: list[Sheet] = field(default_factory=list)

    def find(self, title_or_gid: str | int) -> Sheet:
        for sheet in self.sheets:
            if sheet.sheet_id == title_or_gid or sheet.title == title_or_gid:
                return sheet
        raise KeyError(title_or_gid)

    def by_title(self, title: str, whole: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        # Google also accepts a bare sheet name as a range: the whole sheet.
        raise BadRange(f"Unable to parse range: {whole}")

    def resolve(self, text: str) -> Rect:
        """An A1 range of this spreadsheet, open ends closed at the grid's edge (reads clip to it)."""
        name, cells = _split(text.strip())
        if name is None:
            if any(s.title == cells for s in self.sheets):
                name, cells = cells, ""
            elif not self.sheets:
                raise BadRange(f"Unable to parse range: {text}")
        sheet = self.by_title(name, text) if name is not None else self.sheets[0]
        if not cells:
            return Rect(sheet, 1, 1, sheet.row_count, sheet.column_count, anchored=False)
        first, sep, second = cells.partition(":")
        left, top = _corner(first, text)
        if not sep:
            if left is None or top is None:
                raise BadRange(f"Unable to parse range: {text}")
            return Rect(sheet, top, left, top, left, anchored=True)
        right, bottom = _corner(second, text)
        return Rect(
            sheet,
            top or 1,
            left or 1,
            bottom or sheet.row_count,
            right or sheet.column_count,
            anchored=False,
        )


def read(rect: Rect, render: str) -> dict[str, Any]:
    """A ValueRange as Google answers it: clipped to the grid, trailing empties dropped."""
    sheet = rect.sheet
    bottom, right = min(rect.bottom, sheet.row_count), min(rect.right, sheet.column_count)
    clipped = Rect(sheet, rect.top, rect.left, max(bottom, rect.top), max(right, rect.left), rect.anchored)
    values: list[list[str]] = []
    for row in range(rect.top, bottom + 1):
        line = []
        for col in range(rect.left, right + 1):
            cell = sheet.peek(row, col)
            shown = "" if cell is None else (cell.formula if render == "FORMULA" and cell.formula else cell.value)
            line.append(shown)
        while line and line[-1] == "":
            line.pop()
        values.append(line)
    while values and not values[-1]:
        values.pop()
    answer: dict[str, Any] = {"range": clipped.a1(), "majorDimension": "ROWS"}
    if values:
        answer["values"] = values
    return answer


def as_entered(value: Any, input_option: str) -> Cell | None:
    """What a written JSON value becomes; None leaves the cell as it is (Google skips nulls)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Cell("TRUE" if value else "FALSE")
    if isinstance(value, int | float):
        return Cell(format(value, "g") if isinstance(value, float) else str(value))
    text = str(value)
    if input_option == "USER_ENTERED":
        if text.startswith("="):
            return Cell("", formula=text)
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return Cell(str(int(text)))
    return Cell(text)


def check_write(rect: Rect, values: list[list[Any]]) -> tuple[int, int]:
    """Rows and columns the values cover; BadRange as Google words it when they do not fit."""
    height = len(values)
    width = max((len(row) for row in values), default=0)
    bottom, right = rect.top + height - 1, rect.left + width - 1
    if not rect.anchored:
        if height and bottom > rect.bottom:
            raise BadRange(f"Requested writing within range [{rect.a1()}], but tried writing to row [{bottom}]")
        if width and right > rect.right:
            raise BadRange(
                f"Requested writing within range [{rect.a1()}], but tried writing to column "
                f"[{column_to_letters(right)}]"
            )
    sheet = rect.sheet
    if height and width and (bottom > sheet.row_count or right > sheet.column_count):
        raise BadRange(
            f"Range ({sheet_prefix(sheet.title)}!{column_to_letters(right)}{bottom}) exceeds grid limits. "
            f"Max rows: {sheet.row_count}, max columns: {sheet.column_count}"
        )
    return height, width


def write(rect: Rect, values: list[list[Any]], input_option: str) -> None:
    for r, line in enumerate(values):
        for c, value in enumerate(line):
            entered = as_entered(value, input_option)
            if entered is not None:
                target = rect.sheet.cell(rect.top + r, rect.left + c)
                target.value, target.formula = entered.value, entered.formula
