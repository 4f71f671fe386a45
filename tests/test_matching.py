"""Matching rows and lookups to people (both databases): every rule, its confidence, ambiguity,
unicode folding, the team's private candidates, bad input, and index-backed lookups."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, text

from core.accounts import Accounts
from core.contributions import Contributions
from core.errors import InvalidInput
from core.normalize import ContactQuery
from core.people.contacts import NewEmail, NewPerson, add_person
from core.people.matching import (
    AMBIGUITY_MARGIN,
    EMAIL_CONFIDENCE,
    FUZZY_MAX_CONFIDENCE,
    FUZZY_NAME_THRESHOLD,
    LINKEDIN_CONFIDENCE,
    NAME_AT_DOMAIN_CONFIDENCE,
    MatchOutcome,
    MatchRule,
    fuzzy_confidence,
    match_contact,
    match_contacts,
    search_people,
)
from storage.db import is_sqlite
from storage.models.contributor import SourceKind
from storage.models.enums import EmailStatus


def _person(engine: Engine, name: str, company: str = "Acme", domain: str | None = "acme.com", **kw) -> int:
    return add_person(engine, NewPerson(full_name=name, company=company, domain=domain, **kw))


@pytest.fixture
def people(engine: Engine) -> dict[str, int]:
    return {
        "jose": _person(
            engine,
            "José Müller",
            linkedin_url="https://www.linkedin.com/in/josemuller",
            emails=[NewEmail("jose.muller@acme.com", EmailStatus.VERIFIED, 95)],
        ),
        "jane": _person(engine, "Jane Doe", title="VP Sales"),
        "john": _person(engine, "John Smith", company="Globex Corporation", domain="globex.com"),
        "other_jane": _person(engine, "Jane Doe", company="Initech", domain="initech.com"),
    }


def test_exact_email_wins_first(engine: Engine, people: dict[str, int]) -> None:
    result = match_contact(engine, ContactQuery(email="JOSE.MULLER@acme.com", full_name="Somebody Else"))
    assert result.outcome is MatchOutcome.MATCHED
    assert (result.best.person_id, result.rule) == (people["jose"], MatchRule.EMAIL)
    assert result.confidence == EMAIL_CONFIDENCE


def test_email_rule_beats_a_name_that_points_elsewhere(engine: Engine, people: dict[str, int]) -> None:
    result = match_contact(engine, ContactQuery(email="jose.muller@acme.com", full_name="Jane Doe", domain="acme.com"))
    assert result.best.person_id == people["jose"] and result.rule is MatchRule.EMAIL


def test_linkedin_url_in_any_form(engine: Engine, people: dict[str, int]) -> None:
    result = match_contact(engine, ContactQuery(linkedin_url="http://uk.linkedin.com/in/JoseMuller/?trk=x"))
    assert (result.best.person_id, result.rule, result.confidence) == (
        people["jose"],
        MatchRule.LINKEDIN_URL,
        LINKEDIN_CONFIDENCE,
    )


def test_name_at_domain_with_unicode_folding(engine: Engine, people: dict[str, int]) -> None:
    result = match_contact(engine, ContactQuery(first_name="JOSE", last_name="MULLER", domain="https://www.acme.com/"))
    assert (result.best.person_id, result.rule, result.confidence) == (
        people["jose"],
        MatchRule.NAME_AT_DOMAIN,
        NAME_AT_DOMAIN_CONFIDENCE,
    )
    # The domain can come from a business email that is not itself known.
    by_email_domain = match_contact(engine, ContactQuery(full_name="Jose Muller", email="jm@acme.com"))
    assert by_email_domain.best.person_id == people["jose"] and by_email_domain.rule is MatchRule.NAME_AT_DOMAIN


def test_same_name_at_another_company_is_not_a_match(engine: Engine, people: dict[str, int]) -> None:
    assert match_contact(engine, ContactQuery(full_name="John Smith", domain="acme.com")).outcome is (
        MatchOutcome.NO_MATCH
    )
    jane = match_contact(engine, ContactQuery(full_name="Jane Doe", domain="initech.com"))
    assert jane.best.person_id == people["other_jane"]


def test_fuzzy_name_at_company_name(engine: Engine, people: dict[str, int]) -> None:
    result = match_contact(engine, ContactQuery(full_name="Jon Smith", company="GLOBEX, Inc."))
    assert result.outcome is MatchOutcome.MATCHED
    assert result.best.person_id == people["john"] and result.rule is MatchRule.FUZZY_NAME
    assert 0.6 <= result.confidence < NAME_AT_DOMAIN_CONFIDENCE
    exact_by_company_name = match_contact(engine, ContactQuery(full_name="John Smith", company="Globex"))
    assert exact_by_company_name.confidence == FUZZY_MAX_CONFIDENCE
    assert match_contact(engine, ContactQuery(full_name="Jack Smythe", company="Globex")).outcome is (
        MatchOutcome.NO_MATCH
    )


def test_confidence_orders_the_rules() -> None:
    assert EMAIL_CONFIDENCE > LINKEDIN_CONFIDENCE > NAME_AT_DOMAIN_CONFIDENCE > FUZZY_MAX_CONFIDENCE
    assert fuzzy_confidence(100) == FUZZY_MAX_CONFIDENCE
    assert fuzzy_confidence(FUZZY_NAME_THRESHOLD) < fuzzy_confidence(95) < fuzzy_confidence(100)


def test_two_people_with_the_same_name_at_the_domain_are_ambiguous(engine: Engine, people: dict[str, int]) -> None:
    twin = _person(engine, "Jane Doe", title="Engineer")
    result = match_contact(engine, ContactQuery(full_name="Jane Doe", domain="acme.com"))
    assert result.outcome is MatchOutcome.AMBIGUOUS and result.best is None
    assert {c.person_id for c in result.candidates} == {people["jane"], twin}
    assert all(c.rule is MatchRule.NAME_AT_DOMAIN for c in result.candidates)


def test_fuzzy_candidates_scoring_alike_are_ambiguous_not_guessed(engine: Engine) -> None:
    a = _person(engine, "Jon Smith", company="Hooli", domain="hooli.com")
    b = _person(engine, "John Smithe", company="Hooli", domain="hooli.com")
    result = match_contact(engine, ContactQuery(full_name="John Smith", company="Hooli"))
    assert result.outcome is MatchOutcome.AMBIGUOUS
    assert {c.person_id for c in result.candidates} == {a, b}
    confidences = sorted(c.confidence for c in result.candidates)
    assert confidences[-1] - confidences[0] < AMBIGUITY_MARGIN


def test_search_people_ranks_candidates(engine: Engine, people: dict[str, int]) -> None:
    _person(engine, "Janet Doe")
    found = search_people(engine, "Jane Doe", "Acme")
    assert [c.full_name for c in found][:2] == ["Jane Doe", "Janet Doe"]
    assert found[0].confidence > found[1].confidence
    assert [c.person_id for c in search_people(engine, "jane doe", "initech.com")] == [people["other_jane"]]
    anywhere = search_people(engine, "Jane Doe", limit=5)
    assert {c.person_id for c in anywhere} >= {people["jane"], people["other_jane"]}
    assert len(search_people(engine, "Jane Doe", "Acme", limit=1)) == 1
    with pytest.raises(InvalidInput, match="name"):
        search_people(engine, "   ")
    with pytest.raises(InvalidInput, match="limit"):
        search_people(engine, "Jane", limit=0)


def test_private_candidates_serve_only_their_team(engine: Engine) -> None:
    accounts = Accounts(engine)
    mine = accounts.create_team("mine")
    theirs = accounts.create_team("theirs")
    Contributions(engine, "k").contribute(
        mine.id, [ContactQuery(full_name="Priya Raman", company="Umbrella", domain="umbrella.com")], SourceKind.CSV
    )
    query = ContactQuery(full_name="Priya Raman", domain="umbrella.com")
    seen = match_contact(engine, query, team_id=mine.id)
    assert seen.outcome is MatchOutcome.MATCHED and seen.best.private and seen.best.candidate_id is not None
    assert seen.rule is MatchRule.NAME_AT_DOMAIN
    assert match_contact(engine, query, team_id=theirs.id).outcome is MatchOutcome.NO_MATCH
    assert match_contact(engine, query).outcome is MatchOutcome.NO_MATCH
    assert [c.full_name for c in search_people(engine, "Priya Raman", "umbrella.com", team_id=mine.id)] == [
        "Priya Raman"
    ]
    assert search_people(engine, "Priya Raman", "umbrella.com", team_id=theirs.id) == []


def test_bulk_matching_reports_bad_rows_and_keeps_order(engine: Engine, people: dict[str, int]) -> None:
    queries = [
        ContactQuery(email="jose.muller@acme.com"),
        ContactQuery(),
        ContactQuery(full_name="Jane Doe", domain="acme.com", title="x" * 10_000),
        ContactQuery(full_name="John Smith", domain="globex.com"),
        ContactQuery(full_name="Nobody Known", domain="acme.com"),
    ]
    results = list(match_contacts(engine, queries, batch_size=2))
    assert [r.row for r in results] == [1, 2, 3, 4, 5]
    assert [r.outcome for r in results] == [
        MatchOutcome.MATCHED,
        MatchOutcome.INVALID,
        MatchOutcome.INVALID,
        MatchOutcome.MATCHED,
        MatchOutcome.NO_MATCH,
    ]
    assert results[1].error == "row 2: empty record: no email, LinkedIn URL, name, company or website"
    assert results[2].error == "row 3: title: 10000 characters, at most 255 allowed"
    with pytest.raises(InvalidInput, match="^full_name: 10000 characters"):
        match_contact(engine, ContactQuery(full_name="x" * 10_000))


def test_lookups_are_index_backed(engine: Engine, people: dict[str, int]) -> None:
    """Every statement a match runs uses an index on the big tables (SQLite's planner says so)."""
    if not is_sqlite(engine):
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL may rightly seq-scan tiny test tables")
    accounts = Accounts(engine)
    team = accounts.create_team("planner")
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        list(
            match_contacts(
                engine,
                [
                    ContactQuery(email="jose.muller@acme.com"),
                    ContactQuery(linkedin_url="linkedin.com/in/nobody"),
                    ContactQuery(full_name="Jane Doe", domain="acme.com"),
                    ContactQuery(full_name="Jon Smith", company="Globex"),
                ],
                team_id=team.id,
            )
        )
        search_people(engine, "Jane Doe", team_id=team.id)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements
    big = ("person", "email_address", "company", "contact_candidate", "person_name_key", "company_name_key")
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            for row in plan:
                detail = row[-1]
                scanned = [t for t in big if detail.startswith(f"SCAN {t}") and "INDEX" not in detail]
                assert not scanned, f"full scan of {scanned} in: {statement}\n{plan}"
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
