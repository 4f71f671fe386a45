import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import Accounts
from core.data_requests import DataRequests
from core.errors import InvalidInput, NotFound
from core.ledger import InsufficientCredits
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.sources.database import DatabaseSource
from storage.db import read_transaction
from storage.models import TeamContact
from storage.models.enums import (
    DataKind,
    DataRequestStatus,
    EmailStatus,
    Feature,
    HoldStatus,
    PhoneKind,
    PhoneStatus,
    TransferKind,
)
from storage.timeutil import utcnow


@pytest.fixture
def world(engine: Engine):
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="free")  # 100 credits, email 1, mobile 8
    accounts.add_member("acme", "rep@acme.test")
    accounts.create_team("other", plan="free")
    accounts.add_member("other", "spy@other.test")
    fresh = utcnow()

    def person(name, emails=(), phones=(), **kw):
        return add_person(
            engine,
            NewPerson(
                full_name=name, company="Initech", domain="initech.test", emails=list(emails), phones=list(phones), **kw
            ),
        )

    people = {
        "verified": person(
            "Vera Fied",
            [NewEmail("vera@initech.test", EmailStatus.VERIFIED, 97, fresh)],
            [NewPhone("+14155550100", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line")],
            linkedin_url="https://linkedin.com/in/VeraFied/",
        ),
        "catchall": person("Cat Chall", [NewEmail("cat@initech.test", EmailStatus.ACCEPT_ALL, 60, fresh)]),
        "nothing": person("No Body"),
        "stale": person(
            "Old Timer", [NewEmail("old@initech.test", EmailStatus.VERIFIED, 90, fresh - timedelta(days=45))]
        ),
        "mobile": person(
            "Mo Bile", phones=[NewPhone("+447700900123", PhoneKind.MOBILE, PhoneStatus.UNKNOWN, "mobile")]
        ),
    }
    service = DataRequests(engine, DatabaseSource(engine), accounts=accounts, hold_timeout_s=30, lease_s=5)
    return service, accounts, team, people


def _charges(accounts, team_id):
    return [t for t in accounts.ledger.transfers(team_id) if t.kind in (TransferKind.POST, TransferKind.SPEND)]


def test_verified_email_is_charged_once_then_free_forever(world) -> None:
    service, accounts, team, people = world
    first = service.access_email("acme", "rep@acme.test", people["verified"], feature=Feature.SLACK)
    assert first.status == DataRequestStatus.CHARGED and first.charged_credits == 1
    assert first.email.address == "vera@initech.test" and first.email.status == EmailStatus.VERIFIED
    assert first.office_phone is not None and first.office_phone.e164 == "+14155550100"
    # Same person by another reference and another front end: never charged again.
    again = service.access_email("acme", "rep@acme.test", "https://www.linkedin.com/in/verafied", feature=Feature.CSV)
    assert again.already_accessed and again.charged_credits == 0 and again.email.address == "vera@initech.test"
    assert again.office_phone.e164 == "+14155550100"
    assert accounts.ledger.balance(team.id).available_credits == 99
    [charge] = _charges(accounts, team.id)
    assert charge.meta.category == "email" and charge.meta.feature == "slack" and charge.meta.action == "access_email"
    log = accounts.ledger.usage_log(team.id)
    assert [(r.credits, r.user, r.feature) for r in log] == [(1, "rep@acme.test", "slack")]
    assert "Vera Fied" in log[0].description


def test_unverified_statuses_and_empty_results_cost_nothing(world) -> None:
    service, accounts, team, people = world
    catchall = service.access_email("acme", "rep@acme.test", people["catchall"])
    assert catchall.status == DataRequestStatus.FREE and catchall.charged_credits == 0
    assert catchall.email.status == EmailStatus.ACCEPT_ALL
    nothing = service.access_email("acme", "rep@acme.test", people["nothing"])
    assert nothing.status == DataRequestStatus.NOT_FOUND and nothing.email is None
    no_mobile = service.access_mobile("acme", "rep@acme.test", people["verified"])
    assert no_mobile.status == DataRequestStatus.NOT_FOUND and no_mobile.charged_credits == 0
    assert accounts.ledger.balance(team.id).available_credits == 100
    assert _charges(accounts, team.id) == []
    # Every hold taken for those lookups was released.
    assert accounts.ledger.balance(team.id).held_credits == 0


def test_mobile_is_charged_once_when_a_number_is_found_whatever_its_status(world) -> None:
    service, accounts, team, people = world
    first = service.access_mobile("acme", "rep@acme.test", people["mobile"])
    assert first.charged_credits == 8 and [p.e164 for p in first.mobile_phones] == ["+447700900123"]
    assert first.mobile_phones[0].status == PhoneStatus.UNKNOWN
    second = service.access_mobile("acme", "rep@acme.test", people["mobile"])
    assert second.already_accessed and second.charged_credits == 0
    assert [p.e164 for p in second.mobile_phones] == ["+447700900123"]
    # Email and mobile are separate kinds: accessing the email of the same person is its own request.
    assert service.access_email("acme", "rep@acme.test", people["mobile"]).status == DataRequestStatus.NOT_FOUND
    assert accounts.ledger.balance(team.id).available_credits == 92


def test_accessing_saves_the_person_as_a_team_contact_of_that_team_only(world, engine: Engine) -> None:
    service, accounts, team, people = world
    service.access_email("acme", "rep@acme.test", people["verified"])
    service.access_email("acme", "rep@acme.test", people["verified"])
    with read_transaction(engine) as conn:
        contacts = conn.execute(select(TeamContact.team_id, TeamContact.person_id)).all()
    assert [tuple(c) for c in contacts] == [(team.id, people["verified"])]
    # Another team is net-new for the same person and pays its own credit.
    other = service.access_email("other", "spy@other.test", people["verified"])
    assert other.charged_credits == 1 and not other.already_accessed


def test_insufficient_credits_is_clear_charges_nothing_and_can_succeed_later(world) -> None:
    service, accounts, team, people = world
    accounts.ledger.charge(team.id, 95, key="drain", meta=_meta())
    with pytest.raises(InsufficientCredits, match="8 requested, 5 available"):
        service.access_mobile("acme", "rep@acme.test", people["mobile"])
    assert accounts.ledger.balance(team.id).available_credits == 5
    accounts.ledger.grant(team.id, 10, key="topup", expires_at=utcnow() + timedelta(days=30))
    assert service.access_mobile("acme", "rep@acme.test", people["mobile"]).charged_credits == 8
    assert accounts.ledger.balance(team.id).available_credits == 7


def test_stale_verification_is_rechecked_before_charging(world, engine: Engine) -> None:
    service, accounts, team, people = world
    rechecked = []

    def reverify(finding):
        rechecked.append(finding.address)
        return replace(finding, status=EmailStatus.INVALID, checked_at=utcnow())

    service.reverify = reverify
    result = service.access_email("acme", "rep@acme.test", people["stale"])
    assert rechecked == ["old@initech.test"]
    assert result.email.status == EmailStatus.INVALID and result.charged_credits == 0
    # A fresh verification is not rechecked.
    service.access_email("acme", "rep@acme.test", people["verified"])
    assert rechecked == ["old@initech.test"]


def test_a_failing_lookup_releases_the_hold_and_can_be_retried(world) -> None:
    service, accounts, team, people = world
    real_source = service.source

    class Broken:
        name = "broken"

        def find_email(self, person):
            raise RuntimeError("provider down")

        def find_phones(self, person):
            return []

    service.source = Broken()
    with pytest.raises(RuntimeError):
        service.access_email("acme", "rep@acme.test", people["verified"])
    assert accounts.ledger.balance(team.id).held_credits == 0
    assert accounts.ledger.balance(team.id).available_credits == 100
    service.source = real_source
    assert service.access_email("acme", "rep@acme.test", people["verified"]).charged_credits == 1


def test_a_crashed_lookup_is_taken_over_after_its_lease_without_double_charging(world) -> None:
    service, accounts, team, people = world
    t0 = datetime.now(UTC)
    member = accounts.member("rep@acme.test", team.id)
    from core.people.resolve import resolve_person

    info = resolve_person(service.engine, people["verified"])
    # Step 1 of a request that then "crashes": the claim holds 1 credit and leases the request.
    claim = service._claim(accounts.team(team.id), member, info, DataKind.EMAIL, 1, Feature.SLACK, t0)
    assert claim is not None and accounts.ledger.balance(team.id, t0).held_credits == 1
    # After the lease (5 s in this fixture) another caller takes over, voids the stale hold, charges once.
    later = t0 + timedelta(seconds=6)
    result = service.access_email("acme", "rep@acme.test", people["verified"], now=later)
    assert result.charged_credits == 1
    assert accounts.ledger.balance(team.id, later).available_credits == 99
    assert accounts.ledger.balance(team.id, later).held_credits == 0
    assert len(_charges(accounts, team.id)) == 1


@pytest.mark.parametrize("kind", [DataKind.EMAIL, DataKind.MOBILE])
def test_simultaneous_requests_for_one_person_charge_once(world, kind) -> None:
    service, accounts, team, people = world
    person = people["verified"] if kind == DataKind.EMAIL else people["mobile"]
    results, errors = [], []
    barrier = threading.Barrier(6)

    def press():
        barrier.wait()
        try:
            results.append(service.access("acme", "rep@acme.test", person, kind))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.charged_credits for r in results) == [0] * 5 + [1 if kind == DataKind.EMAIL else 8]
    assert len(_charges(accounts, team.id)) == 1


def test_bad_references_are_clear_errors_and_write_nothing(world, engine: Engine) -> None:
    service, accounts, team, people = world
    before = accounts.ledger.transfers(team.id)
    with pytest.raises(NotFound, match="no person matches"):
        service.access_email("acme", "rep@acme.test", "ghost@nowhere.test")
    with pytest.raises(InvalidInput, match="not an id, an email address or a LinkedIn"):
        service.access_email("acme", "rep@acme.test", "Jane Doe")
    with pytest.raises(InvalidInput, match="empty reference"):
        service.access_email("acme", "rep@acme.test", "  ")
    with pytest.raises(NotFound, match="unknown member 'spy@other.test' in team 'acme'"):
        service.access_email("acme", "spy@other.test", people["verified"])
    with pytest.raises(NotFound, match="unknown team"):
        service.access_email("nope", "rep@acme.test", people["verified"])
    assert accounts.ledger.transfers(team.id) == before
    from storage.models import DataRequest

    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(DataRequest)).scalar() == 0


def test_batch_reports_each_item_and_keeps_going(world) -> None:
    service, accounts, team, people = world
    items = service.access_many(
        "acme", "rep@acme.test", [people["verified"], "bogus ref", people["catchall"]], DataKind.EMAIL
    )
    assert [i.error is None for i in items] == [True, False, True]
    assert items[0].result.charged_credits == 1 and items[2].result.charged_credits == 0
    assert "bogus ref" in items[1].error


def _meta():
    from core.ledger import UsageMeta

    return UsageMeta(category="email", feature="cli")


def test_a_job_budget_caps_spend_and_reveals_nothing_beyond_it(world, engine: Engine) -> None:
    from core.data_requests import Budget, BudgetExhausted
    from core.ledger import UsageMeta
    from core.people.contacts import add_person as add

    service, accounts, team, people = world
    fresh = utcnow()
    verified = [
        add(
            engine,
            NewPerson(full_name=f"P{i}", emails=[NewEmail(f"p{i}@initech.test", EmailStatus.VERIFIED, 90, fresh)]),
        )
        for i in range(6)
    ]
    job_hold = accounts.ledger.hold(team.id, 3, key="job-1", timeout_s=600, meta=UsageMeta(category="email"))
    results, refused = [], []
    errors = []

    def run(person_id):
        try:
            results.append(service.access_email("acme", "rep@acme.test", person_id, budget=Budget(job_hold.id)))
        except BudgetExhausted as exc:
            refused.append((person_id, str(exc)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in verified]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.charged_credits for r in results) == 3 and len(results) == 3 and len(refused) == 3
    assert all("spend cap reached" in message for _, message in refused)
    # Nothing outside the cap was charged from the wallet, and refused requests stay retryable later.
    hold = accounts.ledger.hold_view(job_hold.id)
    assert hold.posted_credits == 3 and hold.remaining_credits == 0
    assert accounts.ledger.balance(team.id).available_credits == 97
    assert hold.status == HoldStatus.POSTED  # fully used: the hold closed itself
    retry = service.access_email("acme", "rep@acme.test", refused[0][0])
    assert retry.charged_credits == 1 and retry.email is not None
    # A budget never pays for what is not chargeable.
    job2 = accounts.ledger.hold(team.id, 5, key="job-2", timeout_s=600, meta=UsageMeta(category="email"))
    free = service.access_email("acme", "rep@acme.test", people["catchall"], budget=Budget(job2.id))
    assert free.charged_credits == 0 and accounts.ledger.hold_view(job2.id).posted_credits == 0
