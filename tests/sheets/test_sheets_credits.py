"""Money in the status column: whatever the order in which a job's rows are stored and written, in
however many passes, the credits shown add up to what the job charged, once per person (hypothesis
drives the orders; the job's stored rows move a person's credits to their first row when it ends,
as core/enrichment/chunks.py does)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.sheets.writer import credits_to_show


@st.composite
def jobs(draw):
    people = draw(st.integers(1, 6))
    prices = draw(st.lists(st.sampled_from([0, 1, 8, 9]), min_size=people, max_size=people))
    rows = draw(st.lists(st.one_of(st.none(), st.integers(0, people - 1)), min_size=1, max_size=25))
    order = draw(st.permutations(range(len(rows))))  # the order rows are stored in (chunks finish)
    cuts = draw(st.lists(st.integers(0, len(rows)), max_size=6))  # passes: after this many rows stored
    return prices, rows, list(order), sorted(set(cuts) | {len(rows)})


@settings(max_examples=300, deadline=None)
@given(jobs())
def test_each_persons_credits_are_shown_once_whatever_the_passes(job) -> None:
    prices, rows, order, cuts = job
    owner: dict[int, int] = {}  # the row whose lookup charged the person (its chunk claimed them)
    for index in order:
        person = rows[index]
        if person is not None and person not in owner:
            owner[person] = index
    stored_credits: dict[int, int] = {}  # row -> credits, as enrichment_row holds them
    shown_by_row: dict[int, int] = {}
    stored = 0
    for cut in cuts:
        for index in order[stored:cut]:
            person = rows[index]
            stored_credits[index] = prices[person] if person is not None and owner[person] == index else 0
        stored = max(stored, cut)
        if stored == len(rows):  # the job ends: credits move to each person's first row
            for person, first in {p: min(i for i, q in enumerate(rows) if q == p) for p in owner}.items():
                for i, q in enumerate(rows):
                    if q == person:
                        stored_credits[i] = prices[person] if i == first else 0
        ready = [i for i in sorted(stored_credits) if i not in shown_by_row]
        charged: dict[int, int] = {}
        shown: dict[int, int] = {}
        for i, credits in stored_credits.items():
            if rows[i] is not None:
                charged[rows[i]] = charged.get(rows[i], 0) + credits
                if i in shown_by_row:
                    shown[rows[i]] = shown.get(rows[i], 0) + shown_by_row[i]
        for i, credits in zip(ready, credits_to_show([rows[i] for i in ready], charged, shown), strict=True):
            assert credits >= 0
            shown_by_row[i] = credits
    assert len(shown_by_row) == len(rows)
    total_shown = sum(shown_by_row.values())
    assert total_shown == sum(prices[p] for p in owner)  # = what the job charged
    for person in owner:
        assert sum(c for i, c in shown_by_row.items() if rows[i] == person) == prices[person]
