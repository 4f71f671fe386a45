"""Row placement (core/sheets/placement.py): properties over random sheets changed by random sorts,
inserts, deletes and edits, plus the examples a reader checks by eye."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from core.sheets.placement import REASON_AMBIGUOUS, REASON_CHANGED, Placement, place_rows, row_fingerprint

HEADER_ROWS = 1
# Few distinct values, so duplicates (the hard case) are common.
CELL_VALUES = ["", "ada@example.com", "bob@example.com", "Ada", "Bob", "ACME", "  ada@example.com "]


@dataclass
class Row:
    uid: int  # who the row is: survives sorts, inserts and deletes; an edit makes it someone else
    cells: tuple[str, ...]


def _fingerprints(rows: list[Row], first: int = 1, last: int | None = None) -> dict[int, str]:
    """Sheet row number -> fingerprint, for rows first..last (1-based, after the header)."""
    last = len(rows) if last is None else last
    return {HEADER_ROWS + n: row_fingerprint(rows[n - 1].cells) for n in range(first, last + 1)}


cells = st.tuples(st.sampled_from(CELL_VALUES), st.sampled_from(CELL_VALUES))
operation = st.one_of(
    st.tuples(st.just("sort"), st.integers(0, 1), st.booleans(), st.integers(0, 5)),
    st.tuples(st.just("insert"), st.integers(0, 40), cells),
    st.tuples(st.just("delete"), st.integers(0, 40)),
    st.tuples(st.just("edit"), st.integers(0, 40), st.integers(0, 1), st.sampled_from(CELL_VALUES)),
)


def _apply(rows: list[Row], op: tuple, uids: count) -> None:
    kind = op[0]
    if kind == "sort":
        _, col, reverse, start = op
        start = min(start, len(rows))
        rows[start:] = sorted(rows[start:], key=lambda r: r.cells[col], reverse=reverse)
    elif kind == "insert":
        rows.insert(min(op[1], len(rows)), Row(next(uids), op[2]))
    elif rows and kind == "delete":
        del rows[op[1] % len(rows)]
    elif rows and kind == "edit":
        _, at, col, value = op
        row = rows[at % len(rows)]
        row.cells = tuple(value if i == col else c for i, c in enumerate(row.cells))
        row.uid = next(uids)  # an edited row is someone else now


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Row], list[Row], int, int]:
    uids = count(1)
    before = [Row(next(uids), draw(cells)) for _ in range(draw(st.integers(0, 30)))]
    first = draw(st.integers(1, max(len(before), 1)))
    last = draw(st.integers(min(first, len(before)), len(before))) if before else 0
    after = [Row(r.uid, r.cells) for r in before]
    for op in draw(st.lists(operation, max_size=6)):
        _apply(after, op, uids)
    return before, after, first, last


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_results_land_only_on_rows_with_the_same_identifiers(scenario) -> None:
    before, after, first, last = scenario
    expected = _fingerprints(before, first, last)
    current = _fingerprints(after)
    placements = place_rows(expected, current)

    assert set(placements) == set(expected)
    targets = [p.target_row for p in placements.values() if p.target_row is not None]
    assert len(targets) == len(set(targets)), "two results on one row"
    for original, placement in placements.items():
        if placement.target_row is None:
            assert placement.reason in (REASON_CHANGED, REASON_AMBIGUOUS)
        else:
            assert placement.reason is None
            assert current[placement.target_row] == expected[original], "a result on a row with other identifiers"
        if current.get(original) == expected[original]:
            assert placement == Placement(original), "an unchanged row was not kept"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_row_with_unique_identifiers_follows_its_moves(scenario) -> None:
    before, after, first, last = scenario
    expected = _fingerprints(before, first, last)
    current = _fingerprints(after)
    placements = place_rows(expected, current)
    now_at = {row.uid: HEADER_ROWS + n for n, row in enumerate(after, start=1)}
    for original, fingerprint in expected.items():
        uid = before[original - HEADER_ROWS - 1].uid
        unique_before = list(expected.values()).count(fingerprint) == 1
        unique_after = list(current.values()).count(fingerprint) == 1
        if uid in now_at and unique_before and unique_after:
            assert placements[original] == Placement(now_at[uid])


def test_a_sort_moves_every_result_with_its_row() -> None:
    before = {2: row_fingerprint(["carol@x.com"]), 3: row_fingerprint(["ada@x.com"]), 4: row_fingerprint(["bob@x.com"])}
    after = {2: before[3], 3: before[4], 4: before[2]}
    assert place_rows(before, after) == {2: Placement(4), 3: Placement(2), 4: Placement(3)}


def test_an_edited_or_deleted_row_gets_no_result() -> None:
    before = {2: row_fingerprint(["ada@x.com"]), 3: row_fingerprint(["bob@x.com"])}
    after = {2: row_fingerprint(["ada@y.com"])}  # Ada's row edited, Bob's deleted
    assert place_rows(before, after) == {2: Placement(None, REASON_CHANGED), 3: Placement(None, REASON_CHANGED)}


def test_a_new_duplicate_makes_a_moved_row_ambiguous() -> None:
    ada = row_fingerprint(["ada@x.com"])
    before = {2: ada, 3: row_fingerprint(["bob@x.com"])}
    after = {3: ada, 4: ada}  # row 2 moved down, and someone typed Ada in again
    assert place_rows(before, after)[2] == Placement(None, REASON_AMBIGUOUS)


def test_duplicates_moved_together_keep_their_order() -> None:
    ada = row_fingerprint(["ada@x.com"])
    before = {2: ada, 3: row_fingerprint(["bob@x.com"]), 4: ada}
    after = {2: row_fingerprint(["bob@x.com"]), 3: ada, 5: ada}  # a sort, then a row inserted at 4
    assert place_rows(before, after) == {2: Placement(3), 3: Placement(2), 4: Placement(5)}


def test_fingerprints_ignore_space_case_and_unicode_form_but_not_content() -> None:
    assert row_fingerprint([" Ada@Example.com ", "Émile"]) == row_fingerprint(["ada@example.com", "E\u0301mile"])
    assert row_fingerprint(["a", ""]) != row_fingerprint(["", "a"])
    assert row_fingerprint(["a b"]) != row_fingerprint(["a", "b"])
    assert len(row_fingerprint(["x"])) == 32
