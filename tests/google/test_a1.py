"""A1 notation (sheets_addon/a1.py), cross-checked against the loopback server's own parser."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.errors import InvalidInput
from sheets_addon.a1 import A1Range, column_index, column_letter, parse_range, quote_sheet
from tests.google.sheets_model import Sheet, Spreadsheet

titles = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)


@given(st.integers(1, 18278))
def test_column_letters_round_trip(index: int) -> None:
    assert column_index(column_letter(index)) == index
    assert column_index(column_letter(index).lower()) == index


def test_known_columns() -> None:
    assert [column_letter(n) for n in (1, 26, 27, 52, 703, 18278)] == ["A", "Z", "AA", "AZ", "AAA", "ZZZ"]
    with pytest.raises(InvalidInput):
        column_letter(0)
    with pytest.raises(InvalidInput):
        column_index("A1")


@given(titles, st.integers(1, 200), st.integers(1, 5000), st.integers(0, 30), st.integers(0, 500))
def test_ranges_round_trip_and_the_server_reads_them_the_same(title, col, row, width, height) -> None:
    grid = A1Range(title, col, row, col + width, row + height)
    assert parse_range(grid.to_a1()) == grid
    assume(title != "first")
    book = Spreadsheet("s", "t", [Sheet(0, "first"), Sheet(7, title, row_count=10_000, column_count=300)])
    rect = book.resolve(grid.to_a1())
    assert rect.sheet.title == title
    assert (rect.left, rect.top, rect.right, rect.bottom) == (col, row, col + width, row + height)


def test_open_ended_and_single_cell_ranges() -> None:
    assert parse_range("'It''s'!A2:C") == A1Range("It's", 1, 2, 3, None)
    assert parse_range("Sheet1!B:B") == A1Range("Sheet1", 2, None, 2, None)
    assert parse_range("G5") == A1Range(None, 7, 5, 7, 5)
    assert parse_range("'Leads 2024'") == A1Range("Leads 2024", None, None, None, None)
    assert A1Range("Leads 2024", 4, 2, 5, 9).rows(3, 4).to_a1() == "'Leads 2024'!D3:E4"
    assert quote_sheet("Bob's") == "'Bob''s'"


@pytest.mark.parametrize("bad", ["A1:?", "!A1", "A0", "Sheet1!1A", "'open!A1", "'x'A1", "''!A1"])
def test_bad_ranges_say_so(bad: str) -> None:
    with pytest.raises(InvalidInput, match="A1|outside the grid"):
        parse_range(bad)
