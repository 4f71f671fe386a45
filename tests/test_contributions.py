"""The contributor database (both databases): corroboration, privacy, opt-out, dedupe, job changes."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, String, func, inspect, select, text

from core.accounts import Accounts
from core.contributions import (
    ContactRecord,
    Contributions,
    SkipReason,
    contacts_with_updates,
    contributor_fingerprint,
)
from core.data_requests import DataRequests
from core.errors import NotFound
from core.people.contacts import NewEmail, NewPerson, add_person
from core.sources.database import DatabaseSource
from storage.db import read_transaction
from storage.models import (
    Company,
    ContactCandidate,
    ContributionObservation,
    EmailAddress,
    Person,
    Phone,
)
from storage.models.contributor import SourceKind, ValueKind
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow

KEY = "test-contributor-key"
SHARED_TABLES = (
    "company",
    "person",
    "email_address",
    "phone",
    "contribution_observation",
    "person_name_key",
    "company_name_key",
)


def jane(**overrides) -> ContactRecord:
    values = dict(
        full_name="Jane Doe",
        email="jane.doe@acme.com",
        company="Acme, Inc.",
        domain="acme.com",
        title="VP Sales",
        linkedin_url="https://www.linkedin.com/in/janedoe",
        phone="+1 415 555 0100",
        location="Austin, TX",
    )
    values.update(overrides)
    return ContactRecord(**values)


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    return Accounts(engine)


@pytest.fixture
def contributions(engine: Engine) -> Contributions:
    return Contributions(engine, KEY)


def count(engine: Engine, table) -> int:
    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def shared_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with read_transaction(engine) as conn:
        return {t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr) for t in SHARED_TABLES}


def every_text_value(engine: Engine) -> str:
    """All text in every table, for proving a value is stored nowhere."""
    parts = []
    insp = inspect(engine)
    with read_transaction(engine) as conn:
        for table in insp.get_table_names():
            if table == "alembic_version":
                continue
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


def candidates_of(engine: Engine, team_id: int) -> list:
    with read_transaction(engine) as conn:
        return conn.execute(select(ContactCandidate).where(ContactCandidate.team_id == team_id)).all()


# --- corroboration ---------------------------------------------------------------------------------


def test_one_contributor_only_makes_a_private_candidate(engine, accounts, contributions) -> None:
    a = accounts.create_team("a")
    before = shared_snapshot(engine)
    summary = contributions.contribute(a.id, [jane()], SourceKind.CSV)
    assert (summary.candidates, summary.shared, summary.corroborated) == (1, 0, 0)
    assert shared_snapshot(engine) == before
    assert [c.email for c in candidates_of(engine, a.id)] == ["jane.doe@acme.com"]


def test_two_teams_corroborate_and_promote(engine, accounts, contributions) -> None:
    a, b = accounts.create_team("a"), accounts.create_team("b")
    contributions.contribute(a.id, [jane()], SourceKind.CSV)
    summary = contributions.contribute(b.id, [jane(title="Head of Sales")], SourceKind.CRM)
    assert summary.shared == 1
    with read_transaction(engine) as conn:
        person = conn.execute(select(Person)).one()
        emails = conn.execute(select(EmailAddress.address, EmailAddress.status)).all()
        phones = conn.execute(select(Phone.e164)).scalars().all()
        company = conn.execute(select(Company.name, Company.domain)).one()
        observers = conn.execute(
            select(func.count(func.distinct(ContributionObservation.contributor))).where(
                ContributionObservation.value_kind == ValueKind.EMAIL.value
            )
        ).scalar_one()
    assert (person.full_name, person.linkedin_url, person.location) == (
        "Jane Doe",
        "https://www.linkedin.com/in/janedoe",
        "Austin, TX",
    )
    # Seen twice but never SMTP-checked: shared as unverified, so never charged as verified.
    assert [tuple(e) for e in emails] == [("jane.doe@acme.com", EmailStatus.UNVERIFIED.value)]
    assert phones == ["+14155550100"]
    assert tuple(company) == ("Acme, Inc.", "acme.com")
    assert observers == 2
    # The titles disagree: neither is shared; each team keeps its own privately.
    assert person.title is None
    assert [c.title for c in candidates_of(engine, a.id)] == ["VP Sales"]
    assert [c.title for c in candidates_of(engine, b.id)] == ["Head of Sales"]
    # A third team agreeing with one of them promotes that title.
    c = accounts.create_team("c")
    contributions.contribute(c.id, [jane(title="VP Sales")], SourceKind.CSV)
    with read_transaction(engine) as conn:
        assert conn.execute(select(Person.title)).scalar_one() == "VP Sales"
    assert candidates_of(engine, a.id) == []  # nothing of team a's record is private any more


def test_the_same_team_twice_is_one_contributor(engine, accounts, contributions) -> None:
    a = accounts.create_team("a")
    contributions.contribute(a.id, [jane()], SourceKind.CSV)
    again = contributions.contribute(a.id, [jane()], SourceKind.CRM)
    assert (again.shared, again.duplicates) == (0, 1)
    assert count(engine, Person) == 0 and count(engine, ContributionObservation) == 0
    assert len(candidates_of(engine, a.id)) == 1
    # Even a different source kind from the same team is not independent.
    with_more = contributions.contribute(a.id, [jane(), jane()], SourceKind.MAILBOX)
    assert with_more.shared == 0 and count(engine, Person) == 0


def test_smtp_verified_email_is_shared_alone_and_the_rest_stays_private(engine, accounts, contributions) -> None:
    a = accounts.create_team("a")
    summary = contributions.contribute(a.id, [jane()], SourceKind.SMTP_VERIFICATION)
    assert summary.shared == 1
    with read_transaction(engine) as conn:
        person = conn.execute(select(Person)).one()
        email = conn.execute(select(EmailAddress)).one()
        phones = conn.execute(select(func.count()).select_from(Phone)).scalar_one()
    assert (email.address, email.status) == ("jane.doe@acme.com", EmailStatus.VERIFIED.value)
    assert email.checked_at is not None
    assert (person.title, person.linkedin_url, person.location, phones) == (None, None, None, 0)
    [private] = candidates_of(engine, a.id)
    assert private.person_id == person.id and private.title == "VP Sales"


def test_existing_person_gets_new_values_only_when_corroborated(engine, accounts, contributions) -> None:
    person_id = add_person(engine, NewPerson(full_name="Jane Doe", company="Acme", domain="acme.com", title="VP Sales"))
    a, b = accounts.create_team("a"), accounts.create_team("b")
    record = ContactRecord(full_name="Jane Doe", domain="acme.com", phone="+14155550100")
    first = contributions.contribute(a.id, [record], SourceKind.CSV)
    assert first.candidates == 1 and count(engine, Phone) == 0
    second = contributions.contribute(b.id, [record], SourceKind.CSV)
    assert second.corroborated == 1
    with read_transaction(engine) as conn:
        assert conn.execute(select(Phone.person_id, Phone.e164)).one() == (person_id, "+14155550100")


# --- privacy ---------------------------------------------------------------------------------------


def test_shared_tables_have_no_team_or_member_columns(engine) -> None:
    insp = inspect(engine)
    for table in SHARED_TABLES:
        columns = [c["name"] for c in insp.get_columns(table)]
        assert not [c for c in columns if "team" in c or "member" in c], (table, columns)
        for fk in insp.get_foreign_keys(table):
            assert fk["referred_table"] not in ("team", "member"), (table, fk)


def test_opted_out_team_leaves_nothing_in_shared_tables(engine, accounts, contributions) -> None:
    private = accounts.create_team("private", contribute=False)
    other = accounts.create_team("other")
    before = shared_snapshot(engine)
    summary = contributions.contribute(
        private.id, [jane(), jane(full_name="Ravi Patel", email="ravi@acme.com", linkedin_url=None)], SourceKind.CSV
    )
    assert summary.candidates == 2
    assert shared_snapshot(engine) == before
    # Its candidates serve it, and never corroborate another team's upload.
    contributions.contribute(other.id, [jane()], SourceKind.CSV)
    assert shared_snapshot(engine) == before
    assert len(candidates_of(engine, private.id)) == 2
    # Even an SMTP-verified email from an opted-out team stays private.
    contributions.contribute(private.id, [jane(email="jd@acme.com")], SourceKind.SMTP_VERIFICATION)
    assert shared_snapshot(engine) == before


def test_opting_out_after_uploading_withdraws_the_candidates_from_corroboration(engine, accounts, contributions):
    a, b = accounts.create_team("a"), accounts.create_team("b")
    contributions.contribute(a.id, [jane()], SourceKind.CSV)
    accounts.set_contribute(a.id, False)
    contributions.contribute(b.id, [jane()], SourceKind.CSV)
    assert count(engine, Person) == 0


def test_opted_out_team_upload_of_a_known_person_adds_no_observation(engine, accounts, contributions) -> None:
    add_person(
        engine,
        NewPerson(
            full_name="Jane Doe",
            company="Acme",
            domain="acme.com",
            emails=[NewEmail("jane.doe@acme.com", EmailStatus.VERIFIED, 95)],
        ),
    )
    private = accounts.create_team("private", contribute=False)
    before = shared_snapshot(engine)
    contributions.contribute(private.id, [jane()], SourceKind.CSV)
    assert shared_snapshot(engine) == before


def test_fingerprint_cannot_be_derived_from_the_team_without_the_key(engine, accounts, contributions) -> None:
    a, b = accounts.create_team("alpha"), accounts.create_team("beta")
    contributions.contribute(a.id, [jane()], SourceKind.CSV)
    contributions.contribute(b.id, [jane()], SourceKind.CSV)
    with read_transaction(engine) as conn:
        stored = set(conn.execute(select(ContributionObservation.contributor)).scalars())
    assert stored == {contributor_fingerprint(KEY, a.id), contributor_fingerprint(KEY, b.id)}
    # Unkeyed digests of anything about the team, or a different key, give other values.
    guesses = set()
    for team in (a, b):
        for material in (str(team.id), team.name, f"team:{team.id}", f"tributary/contributor/v1/team/{team.id}"):
            for algo in ("md5", "sha1", "sha256", "sha512", "blake2b"):
                guesses.add(hashlib.new(algo, material.encode()).hexdigest())
            guesses.add(hmac.new(b"", material.encode(), hashlib.sha256).hexdigest())
        guesses.add(contributor_fingerprint("another-key", team.id))
        guesses.add(contributor_fingerprint(KEY, team.name))  # type: ignore[arg-type]
    assert not stored & guesses
    # Nothing in a shared table equals a team id or name either.
    snapshot = shared_snapshot(engine)
    for table, rows in snapshot.items():
        for row in rows:
            assert "alpha" not in map(str, row) and "beta" not in map(str, row), table


def test_sensitive_columns_and_personal_emails_are_stored_nowhere(engine, accounts, contributions) -> None:
    a, b = accounts.create_team("a"), accounts.create_team("b")
    upload = {
        "full_name": "Jane Doe",
        "company": "Acme",
        "domain": "acme.com",
        "linkedin_url": "linkedin.com/in/janedoe",
        "deal_value": "USD 250000 SECRET-DEAL",
        "pricing": "SECRET-PRICE 40% discount",
        "notes": "SECRET-NOTE call after lunch",
        "personal_email": "jane.secret@gmail.com",
    }
    personal_as_email = dict(upload, email="jane.secret@gmail.com")
    for team in (a, b):
        summary = contributions.contribute(team.id, [ContactRecord.from_mapping(personal_as_email)], SourceKind.CSV)
        assert summary.personal_emails_dropped == 1
    assert count(engine, Person) == 1  # corroborated by LinkedIn + name, without the personal email
    everything = every_text_value(engine)
    for secret in ("SECRET-DEAL", "SECRET-PRICE", "SECRET-NOTE", "jane.secret@gmail.com", "gmail.com"):
        assert secret not in everything


# --- dedupe, bad input -----------------------------------------------------------------------------


def test_upload_is_deduped_against_the_teams_contacts(engine, accounts, contributions) -> None:
    person_id = add_person(
        engine,
        NewPerson(
            full_name="Jane Doe",
            company="Acme",
            domain="acme.com",
            emails=[NewEmail("jane.doe@acme.com", EmailStatus.VERIFIED, 95, utcnow())],
        ),
    )
    a = accounts.create_team("a")
    member = accounts.add_member("a", "rep@a.test")
    DataRequests(engine, DatabaseSource(engine), accounts=accounts).access_email(a.id, member.id, person_id)
    summary = contributions.contribute(
        a.id, [ContactRecord(full_name="Jane Doe", email="jane.doe@acme.com", company="Acme")], SourceKind.CRM
    )
    assert summary.duplicates == 1 and candidates_of(engine, a.id) == []


def test_bad_records_are_skipped_with_row_and_reason_and_the_rest_go_on(engine, accounts, contributions) -> None:
    a = accounts.create_team("a")
    records = [
        ContactRecord(),
        jane(title="x" * 10_000),
        ContactRecord(full_name="Only A Name"),
        ContactRecord(email="bad@@acme.com"),
        jane(),
    ]
    summary = contributions.contribute(a.id, records, SourceKind.CSV, batch_size=2)
    assert summary.records == 5 and summary.candidates == 1
    assert [(s.row, s.reason) for s in summary.skipped] == [
        (1, SkipReason.INVALID),
        (2, SkipReason.INVALID),
        (3, SkipReason.NO_IDENTITY),
        (4, SkipReason.INVALID),
    ]
    assert summary.skipped[1].detail == "row 2: title: 10000 characters, at most 255 allowed"
    assert summary.skipped[0].detail.startswith("row 1: empty record")
    assert summary.skipped[3].detail.startswith("row 4: email: 'bad@@acme.com' is not a valid address")
    with pytest.raises(NotFound):
        contributions.contribute(999_999, [jane()], SourceKind.CSV)


# --- job changes -----------------------------------------------------------------------------------


def test_corroborated_move_marks_old_email_update_required_and_tells_the_team(engine, accounts, contributions):
    person_id = add_person(
        engine,
        NewPerson(
            full_name="Jane Doe",
            company="Acme",
            domain="acme.com",
            linkedin_url="https://www.linkedin.com/in/janedoe",
            emails=[NewEmail("jane.doe@acme.com", EmailStatus.VERIFIED, 95, utcnow())],
        ),
    )
    holder = accounts.create_team("holder")
    member = accounts.add_member("holder", "rep@holder.test")
    DataRequests(engine, DatabaseSource(engine), accounts=accounts).access_email(holder.id, member.id, person_id)
    assert contacts_with_updates(engine, holder.id) == []

    moved = ContactRecord(
        full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", company="Globex", domain="globex.com"
    )
    a, b = accounts.create_team("a"), accounts.create_team("b")
    contributions.contribute(a.id, [moved], SourceKind.CRM)
    with read_transaction(engine) as conn:  # one contributor: nothing changes yet
        assert conn.execute(select(EmailAddress.status)).scalar_one() == EmailStatus.VERIFIED.value
    contributions.contribute(b.id, [moved], SourceKind.CSV)
    with read_transaction(engine) as conn:
        status, reasons = conn.execute(select(EmailAddress.status, EmailAddress.reasons)).one()
        domain = conn.execute(
            select(Company.domain).join(Person, Person.company_id == Company.id).where(Person.id == person_id)
        ).scalar_one()
    assert (status, domain) == (EmailStatus.UPDATE_REQUIRED.value, "globex.com")
    assert "person_moved" in reasons
    [notice] = contacts_with_updates(engine, holder.id)
    assert (notice.person_id, notice.old_email, notice.company, notice.domain) == (
        person_id,
        "jane.doe@acme.com",
        "Globex",
        "globex.com",
    )
    assert contacts_with_updates(engine, a.id) == []  # a never held that email


def test_a_stale_export_cannot_move_the_person_back_with_old_sightings(engine, accounts, contributions) -> None:
    """Observations of the old employer made before the move do not corroborate a move back."""
    add_person(
        engine,
        NewPerson(
            full_name="Jane Doe", company="Acme", domain="acme.com", linkedin_url="https://www.linkedin.com/in/janedoe"
        ),
    )
    a, b, c = accounts.create_team("a"), accounts.create_team("b"), accounts.create_team("c")
    old = ContactRecord(full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", domain="acme.com")
    new = ContactRecord(full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", domain="globex.com")
    from datetime import timedelta

    t0 = utcnow() - timedelta(days=10)
    contributions.contribute(a.id, [old], SourceKind.CSV, now=t0)  # a saw her at Acme
    contributions.contribute(b.id, [new], SourceKind.CSV, now=t0 + timedelta(days=5))
    contributions.contribute(c.id, [new], SourceKind.CSV, now=t0 + timedelta(days=5))
    contributions.contribute(b.id, [old], SourceKind.CSV, now=t0 + timedelta(days=6))  # one fresh sighting of Acme
    with read_transaction(engine) as conn:
        assert (
            conn.execute(select(Company.domain).join(Person, Person.company_id == Company.id)).scalar_one()
            == "globex.com"
        )


# --- concurrency -----------------------------------------------------------------------------------


def test_concurrent_uploads_of_one_person_create_it_once(engine, accounts, contributions) -> None:
    teams = [accounts.create_team(f"t{i}") for i in range(4)]
    barrier = threading.Barrier(len(teams))
    errors: list[BaseException] = []

    def upload(team_id: int) -> None:
        try:
            barrier.wait()
            contributions.contribute(team_id, [jane()], SourceKind.CSV)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(t.id,)) for t in teams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Whatever the interleaving, at most one shared Jane; once any two have committed she exists.
    contributions.contribute(teams[0].id, [jane()], SourceKind.CSV)
    assert count(engine, Person) == 1
    assert count(engine, EmailAddress) == 1


def test_string_columns_are_bounded(engine) -> None:
    """Every text column of the candidate table has a width, so a 10,000-char cell can never land."""
    for column in ContactCandidate.__table__.columns:
        if isinstance(column.type, String):
            assert column.type.length is not None, column.name


# --- property: shared iff two independent contributing teams -----------------------------------------

_PEOPLE = iter(range(1_000_000))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uploads=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([SourceKind.CSV, SourceKind.CRM])), max_size=6))
def test_a_person_is_shared_exactly_when_two_contributing_teams_supplied_it(engine, uploads) -> None:
    """Teams 0-2 contribute, team 3 opted out; each example uploads a fresh person."""
    contributions = Contributions(engine, KEY)
    accounts = Accounts(engine)
    existing = {t.name: t for t in accounts.teams()}
    teams = [existing.get(f"p{i}") or accounts.create_team(f"p{i}", contribute=i != 3) for i in range(4)]
    n = next(_PEOPLE)
    record = ContactRecord(
        full_name=f"Person Number{n}", domain="prop.test", company="Prop", email=f"p{n}@prop.test", title="CTO"
    )
    for team_index, source in uploads:
        contributions.contribute(teams[team_index].id, [record], source)
    contributing = {i for i, _ in uploads if i != 3}
    with read_transaction(engine) as conn:
        person_ids = (
            conn.execute(select(EmailAddress.person_id).where(EmailAddress.address == f"p{n}@prop.test"))
            .scalars()
            .all()
        )
        fingerprints = set(
            conn.execute(
                select(ContributionObservation.contributor)
                .join(EmailAddress, EmailAddress.person_id == ContributionObservation.person_id)
                .where(EmailAddress.address == f"p{n}@prop.test")
            ).scalars()
        )
    assert len(person_ids) == (1 if len(contributing) >= 2 else 0)
    # Exactly the contributing teams that supplied it are counted, each once; the opted-out never.
    expected = {contributor_fingerprint(KEY, teams[i].id) for i in contributing} if len(contributing) >= 2 else set()
    assert fingerprints == expected
