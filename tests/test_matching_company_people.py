"""A company's people scored as columns (core.people.matching._CompanyPeople): the exact-name dict
and rapidfuzz's one pass over the company must find exactly the candidates, rules and confidences
that scoring each person in turn (`_score_name`, the rule as written) finds, for any names."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from core.normalize import ContactQuery, normalize_contact, parse_name
from core.people.matching import MatchRule, _CompanyPeople, _score_name

# Few, alike parts so that exact names, near names (one letter off) and strangers all occur.
_PARTS = ["Jon", "John", "Joan", "Jane", "Smith", "Smyth", "Doe", "Ann", "Anne", "Müller", "Muller", "Lee", "Li"]
_part = st.sampled_from(_PARTS)


@st.composite
def _person_rows(draw) -> list[SimpleNamespace]:
    rows = []
    for person_id in range(1, draw(st.integers(0, 40)) + 1):
        first, last = draw(_part), draw(_part)
        name = parse_name(f"{first} {last}")
        keyed = draw(st.booleans())  # a person written without name keys has them computed
        rows.append(
            SimpleNamespace(
                id=person_id, full_name=f"{first} {last}", first_name=first, last_name=last,
                first_key=name.first_key if keyed else None, last_key=name.last_key if keyed else None,
                full_key=name.full_key if keyed else None,
            )
        )
    return rows


def _one_by_one(rows, contact, at_domain: bool) -> set[tuple[int, MatchRule, float]]:
    found = set()
    for row in rows:
        name = parse_name(row.full_name, row.first_name, row.last_name)
        keys = (row.first_key, row.last_key, row.full_key) if row.full_key is not None else (
            name.first_key, name.last_key, name.full_key
        )
        scored = _score_name(contact, *keys, at_domain)
        if scored:
            found.add((row.id, *scored))
    return found


@settings(max_examples=300, deadline=None)
@given(rows=_person_rows(), first=_part, last=_part, only_last=st.booleans(), at_domain=st.booleans())
def test_columns_find_what_scoring_each_person_finds(rows, first, last, only_last, at_domain) -> None:
    names = {"full_name": last} if only_last else {"first_name": first, "last_name": last}
    contact = normalize_contact(ContactQuery(**names, domain="acme.com"))
    people = _CompanyPeople()
    for row in rows:
        people.add(row)
    got = [(row.id, rule, confidence) for row, rule, confidence in people.scored(contact, at_domain)]
    assert len(got) == len(set(got)), "a person found twice"
    assert set(got) == _one_by_one(rows, contact, at_domain)


def test_an_exact_name_is_not_also_a_fuzzy_candidate() -> None:
    name = parse_name("Jane Doe")
    people = _CompanyPeople()
    people.add(SimpleNamespace(id=1, full_name="Jane Doe", first_name="Jane", last_name="Doe",
                               first_key=name.first_key, last_key=name.last_key, full_key=name.full_key))
    contact = normalize_contact(ContactQuery(first_name="Jane", last_name="Doe", domain="acme.com"))
    assert [(r.id, rule) for r, rule, _ in people.scored(contact, True)] == [(1, MatchRule.NAME_AT_DOMAIN)]
