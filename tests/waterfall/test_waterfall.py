"""The waterfall with real sources: the contributor database, the pattern finder on the loopback mail
internet, and Hunter-shaped HTTP providers on loopback servers; then data requests through it, on
both databases: the team pays only when something chargeable is found, and only once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from core.accounts import Accounts
from core.data_requests import DataRequests
from core.errors import InvalidInput
from core.finder.finder import EmailFinder
from core.finder.verification import stored_verify_batch
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.people.resolve import resolve_person
from core.sources.database import DatabaseSource
from core.sources.http_provider import HttpProviderSource, ProviderConfig
from core.sources.pattern_finder import PatternFinderSource
from core.verify.pipeline import EmailVerifier
from core.waterfall import Waterfalls
from storage.db import read_transaction
from storage.models import EmailAddress, Phone, SourceCall
from storage.models.enums import DataKind, DataRequestStatus, EmailStatus, PhoneKind, PhoneStatus, TransferKind
from storage.timeutil import utcnow
from tests.mailnet import MailNet
from tests.waterfall.vendor_server import Reply, VendorServer, hunter_found, hunter_not_found

DELIVERABLE = "wu.kai.sales@hunted.test"  # exists on the mailnet, no pattern would guess it
UNDELIVERABLE = "ghost@hunted.test"  # the mailbox server rejects it
MOBILE = "+44 7400 123456"


@pytest.fixture(scope="module")
def mailnet() -> Iterator[MailNet]:
    net = MailNet()
    net.add_domain("dots.test", mailboxes=["jane.doe", "vera.fied"])
    net.add_domain("hunted.test", mailboxes=["wu.kai.sales"])
    net.add_domain("catchall.test", mailboxes=[], accept_all=True)
    with net:
        yield net


@pytest.fixture
def vendors() -> Iterator[tuple[VendorServer, VendorServer]]:
    with VendorServer() as hunter, VendorServer() as broken:
        broken.default = lambda params: Reply(500, b"internal error")
        yield hunter, broken


@dataclass
class World:
    engine: Engine
    accounts: Accounts
    waterfalls: Waterfalls
    requests: DataRequests
    hunter: VendorServer
    broken: VendorServer
    directory: dict[str, Reply]  # vendor answers by last name

    def person(self, name: str, domain: str, emails=(), phones=()) -> int:
        first, last = name.split(" ", 1)
        return add_person(
            self.engine,
            NewPerson(
                full_name=name,
                first_name=first,
                last_name=last,
                company=domain.split(".")[0].title(),
                domain=domain,
                country_code="GB",
                emails=list(emails),
                phones=list(phones),
            ),
        )

    def calls(self, person_id: int | None = None) -> list[tuple[str, str, str, str | None]]:
        stmt = select(SourceCall).order_by(SourceCall.id)
        if person_id is not None:
            stmt = stmt.where(SourceCall.person_id == person_id)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [(r.kind, r.source, r.outcome, r.result_status) for r in rows]


def _provider(name: str, server: VendorServer, **overrides) -> HttpProviderSource:
    config = ProviderConfig(
        name=name,
        base_url=server.base_url,
        api_key="key",
        cost_per_hit_usd=Decimal("0.049"),
        rate_limit_per_s=1000,
        max_attempts=2,
        **overrides,
    )
    return HttpProviderSource(config, sleep=lambda s: None)


@pytest.fixture
def world(engine: Engine, mailnet: MailNet, vendors) -> World:
    hunter, broken = vendors
    accounts = Accounts(engine)
    accounts.create_team("acme", plan="free")  # 100 credits; email 1, mobile 8
    accounts.add_member("acme", "rep@acme.test")
    accounts.create_team("other", plan="free")
    accounts.add_member("other", "rep@other.test")
    verify_batch = stored_verify_batch(engine, EmailVerifier(mailnet.verifier_config()))
    finder = EmailFinder(engine, verify_batch, max_candidates=4, batch_size=2)
    sources = {
        "database": DatabaseSource(engine),
        "pattern": PatternFinderSource(finder),
        # Its circuit stays closed here: the breaker has its own tests, these are about money.
        "hunter": _provider("hunter", hunter, circuit_failure_threshold=1000),
        "broken": _provider("broken", broken),
    }
    waterfalls = Waterfalls(engine, sources, accounts=accounts, validate=lambda a: verify_batch([a])[0])
    directory: dict[str, Reply] = {}
    hunter.default = lambda params: directory.get(params["last_name"].lower(), hunter_not_found())
    service = DataRequests(
        engine, DatabaseSource(engine), accounts=accounts, sources=waterfalls.for_team, hold_timeout_s=60, lease_s=30
    )
    return World(engine, accounts, waterfalls, service, hunter, broken, directory)


def _email_rows(engine: Engine, person_id: int) -> list[tuple[str, str]]:
    with read_transaction(engine) as conn:
        rows = conn.execute(select(EmailAddress).where(EmailAddress.person_id == person_id)).all()
    return [(r.address, r.status) for r in rows]


# ---- configuration


def test_default_plan_and_admin_configuration(world: World) -> None:
    plan = world.waterfalls.get("acme")
    assert (plan.email_sources, plan.phone_sources, plan.validate_email, plan.configured) == (
        ("database",),
        ("database",),
        False,
        False,
    )
    plan = world.waterfalls.set("acme", email_sources=["database", "Pattern ", "hunter"], validate_email=True)
    assert plan.email_sources == ("database", "pattern", "hunter") and plan.phone_sources == ("database",)
    assert plan.validate_email and plan.configured
    plan = world.waterfalls.set("acme", phone_sources=["hunter"])  # the rest is kept
    assert plan.email_sources == ("database", "pattern", "hunter") and plan.phone_sources == ("hunter",)
    assert world.waterfalls.get("other").configured is False  # one team's settings are its own


@pytest.mark.parametrize(
    ("email", "message"),
    [
        (["database", "zoominfo"], "unknown source 'zoominfo'; registered: database, pattern, hunter, broken"),
        (["hunter", "hunter"], "'hunter' listed more than once"),
        ([" ", ""], "give at least one source"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(world: World, email, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        world.waterfalls.set("acme", email_sources=email)
    assert world.waterfalls.get("acme").configured is False  # nothing half-written


# ---- the waterfall itself


def test_stops_at_the_first_actionable_result_and_logs_it(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["database", "pattern", "hunter"], validate_email=True)
    pid = world.person("Vera Fied", "dots.test", [NewEmail("vera.fied@dots.test", EmailStatus.VERIFIED, 97, utcnow())])
    team = world.accounts.team("acme")
    found = world.waterfalls.for_team(team).find_email(resolve_person(world.engine, pid))
    assert (found.address, found.status, found.source) == ("vera.fied@dots.test", EmailStatus.VERIFIED, "database")
    assert world.hunter.calls == 0
    assert world.calls(pid) == [("email", "database", "found", "verified")]


def test_pattern_finder_hit_is_written_back_so_the_next_lookup_is_the_database(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["database", "pattern", "hunter"])
    pid = world.person("Jane Doe", "dots.test")
    waterfall = world.waterfalls.for_team(world.accounts.team("acme"))
    person = resolve_person(world.engine, pid)
    first = waterfall.find_email(person)
    assert (first.address, first.status, first.source) == ("jane.doe@dots.test", EmailStatus.VERIFIED, "pattern")
    assert _email_rows(world.engine, pid) == [("jane.doe@dots.test", "verified")]
    again = waterfall.find_email(person)
    assert again.source == "database" and again.address == "jane.doe@dots.test"
    assert world.calls(pid) == [
        ("email", "database", "not_found", None),
        ("email", "pattern", "found", "verified"),
        ("email", "database", "found", "verified"),
    ]
    assert world.hunter.calls == 0


def test_failing_sources_are_skipped_and_every_call_is_logged_with_our_cost(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["broken", "hunter"], validate_email=True)
    world.directory["wu"] = hunter_found(DELIVERABLE, status="valid", score=88)
    pid = world.person("Kai Wu", "hunted.test")
    found = world.waterfalls.for_team(world.accounts.team("acme")).find_email(resolve_person(world.engine, pid))
    assert (found.address, found.status, found.source) == (DELIVERABLE, EmailStatus.VERIFIED, "hunter")
    assert world.broken.calls == 2  # retried once, then skipped
    assert world.calls(pid) == [
        ("email", "broken", "http_5xx", None),
        ("email", "hunter", "found", "unverified"),
        ("validation", "hunter", "checked", "verified"),
    ]
    with read_transaction(world.engine) as conn:
        costs = dict(
            conn.execute(select(SourceCall.source, SourceCall.cost_usd_micros).where(SourceCall.kind == "email")).all()
        )
    assert costs == {"broken": 0, "hunter": 49_000}
    assert _email_rows(world.engine, pid) == [(DELIVERABLE, "verified")]  # verified by us: shared


def test_bad_json_from_a_vendor_is_logged_and_skipped(world: World) -> None:
    world.hunter.script.append(Reply(200, b"{not json"))
    world.waterfalls.set("acme", email_sources=["hunter", "database"])
    pid = world.person("Kai Wu", "hunted.test")
    assert world.waterfalls.for_team(world.accounts.team("acme")).find_email(resolve_person(world.engine, pid)) is None
    assert world.calls(pid) == [("email", "hunter", "bad_response", None), ("email", "database", "not_found", None)]


def test_validation_rejects_an_undeliverable_provider_email(world: World) -> None:
    world.directory["wu"] = hunter_found(UNDELIVERABLE, status="valid", score=95)
    pid = world.person("Kai Wu", "hunted.test")
    person = resolve_person(world.engine, pid)
    world.waterfalls.set("acme", email_sources=["hunter"], validate_email=True)
    assert world.waterfalls.for_team(world.accounts.team("acme")).find_email(person) is None
    assert world.calls(pid)[-1] == ("validation", "hunter", "rejected", "invalid")
    # Without the validation step the vendor's claim comes back for what it is: unverified, free.
    world.waterfalls.set("acme", validate_email=False)
    claim = world.waterfalls.for_team(world.accounts.team("acme")).find_email(person)
    assert (claim.address, claim.status, claim.chargeable) == (UNDELIVERABLE, EmailStatus.UNVERIFIED, False)
    assert _email_rows(world.engine, pid) == []  # unchecked claims never enter the shared tables


def test_catch_all_guess_is_kept_while_later_sources_are_tried(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["pattern", "hunter"], validate_email=True)
    pid = world.person("Ann Lee", "catchall.test")
    found = world.waterfalls.for_team(world.accounts.team("acme")).find_email(resolve_person(world.engine, pid))
    assert (found.address, found.status, found.source) == ("ann.lee@catchall.test", EmailStatus.ACCEPT_ALL, "pattern")
    assert world.hunter.calls == 1  # asked, because accept_all is not actionable
    assert _email_rows(world.engine, pid) == []


def test_phone_waterfall_stops_at_a_valid_number_of_the_kind_asked_for(world: World) -> None:
    world.waterfalls.set("acme", phone_sources=["database", "hunter"])
    world.directory["wu"] = hunter_found("kai.wu@hunted.test", phone=MOBILE)
    office = NewPhone("+14155550100", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line")
    pid = world.person("Kai Wu", "hunted.test", phones=[office])
    person = resolve_person(world.engine, pid)
    team = world.accounts.team("acme")
    # An email request wants the free office phone: the database has one, no vendor call.
    assert [p.e164 for p in world.waterfalls.for_team(team, DataKind.EMAIL).find_phones(person)] == ["+14155550100"]
    assert world.hunter.calls == 0
    # A mobile request goes on to the vendor; its number is written back for next time.
    phones = world.waterfalls.for_team(team, DataKind.MOBILE).find_phones(person)
    assert [(p.e164, p.kind, p.source) for p in phones] == [
        ("+14155550100", PhoneKind.OFFICE, "database"),
        ("+447400123456", PhoneKind.MOBILE, "hunter"),
    ]
    with read_transaction(world.engine) as conn:
        stored = conn.execute(select(Phone.e164, Phone.kind).where(Phone.person_id == pid).order_by(Phone.id)).all()
    assert [tuple(r) for r in stored] == [("+14155550100", "office"), ("+447400123456", "mobile")]


def test_a_persons_email_and_mobile_requests_walk_the_phone_sources_once(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["database"], phone_sources=["database", "broken", "hunter"])
    world.directory["wu"] = hunter_found("kai.wu@hunted.test", phone=MOBILE)
    world.directory["lee"] = hunter_found("ann.lee@hunted.test", phone=MOBILE)
    kai = world.person("Kai Wu", "hunted.test")
    office = NewPhone("+14155550100", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line")
    ann = world.person("Ann Lee", "hunted.test", phones=[office])
    team, member = world.accounts.team("acme"), world.accounts.member("rep@acme.test", "acme")

    answers = world.requests.access_people(team, member, [kai, ann], [DataKind.EMAIL, DataKind.MOBILE])

    # Kai: the email request (after an office phone) asked all three; the mobile request reused the
    # answers, so each source is logged once, except the failing vendor, which it asked again.
    assert [c for c in world.calls(kai) if c[0] == "phone"] == [
        ("phone", "database", "not_found", None),
        ("phone", "broken", "http_5xx", None),
        ("phone", "hunter", "found", "valid"),
        ("phone", "broken", "http_5xx", None),
    ]
    assert [p.e164 for p in answers[0][DataKind.MOBILE].mobile_phones] == ["+447400123456"]
    # Ann: the email request stopped at the database's office line; the mobile request went on from there.
    assert [c for c in world.calls(ann) if c[0] == "phone"] == [
        ("phone", "database", "found", "valid"),
        ("phone", "broken", "http_5xx", None),
        ("phone", "hunter", "found", "valid"),
    ]
    assert [p.e164 for p in answers[1][DataKind.MOBILE].mobile_phones] == ["+447400123456"]
    # The failing vendor: 2 attempts per ask, asked twice for Kai, once for Ann; hunter once each.
    assert world.broken.calls == 6 and world.hunter.calls == 2


def test_one_vendor_call_that_answers_email_and_phone_is_costed_once(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["hunter"], phone_sources=["hunter"])
    world.directory["wu"] = hunter_found("kai.wu@hunted.test", phone=MOBILE)
    world.directory["lee"] = hunter_found("ann.lee@hunted.test", phone=MOBILE)
    kai, ann = world.person("Kai Wu", "hunted.test"), world.person("Ann Lee", "hunted.test")
    team, member = world.accounts.team("acme"), world.accounts.member("rep@acme.test", "acme")

    world.requests.access_people(team, member, [kai], [DataKind.EMAIL, DataKind.MOBILE])
    world.requests.access_people(team, member, [ann], [DataKind.MOBILE])  # phones alone: the hit costs

    with read_transaction(world.engine) as conn:
        costs = conn.execute(
            select(SourceCall.person_id, SourceCall.kind, SourceCall.cost_usd_micros)
            .where(SourceCall.outcome == "found").order_by(SourceCall.id)
        ).all()
    # Kai's email and phones came from one call: its price is logged on the first hit only.
    assert sorted(c.kind for c in costs if c.person_id == kai) == ["email", "phone"]
    assert sorted(c.cost_usd_micros for c in costs if c.person_id == kai) == [0, 49_000]
    assert [(c.kind, c.cost_usd_micros) for c in costs if c.person_id == ann] == [("phone", 49_000)]
    assert world.hunter.calls == 2


# ---- data requests through the waterfall: money


def _charged(world: World, team: str = "acme") -> int:
    team_id = world.accounts.team(team).id
    transfers = world.accounts.ledger.transfers(team_id)
    return sum(t.amount_credits for t in transfers if t.kind in (TransferKind.POST, TransferKind.SPEND))


def test_team_pays_only_when_chargeable_data_is_found(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["database", "broken", "hunter"], phone_sources=["database", "hunter"])
    world.waterfalls.set("acme", validate_email=True)
    world.directory["wu"] = hunter_found(DELIVERABLE, phone=MOBILE)
    world.directory["ghost"] = hunter_found(UNDELIVERABLE)
    kai = world.person("Kai Wu", "hunted.test")
    ghost = world.person("Gus Ghost", "hunted.test")
    nobody = world.person("No Body", "hunted.test")
    rep = "rep@acme.test"

    got = world.requests.access_email("acme", rep, kai)
    assert (got.status, got.charged_credits, got.email.address) == (DataRequestStatus.CHARGED, 1, DELIVERABLE)
    rejected = world.requests.access_email("acme", rep, ghost)
    assert (rejected.status, rejected.charged_credits, rejected.email) == (DataRequestStatus.NOT_FOUND, 0, None)
    empty = world.requests.access_email("acme", rep, nobody)
    assert (empty.status, empty.charged_credits) == (DataRequestStatus.NOT_FOUND, 0)
    mobile = world.requests.access_mobile("acme", rep, kai)
    assert (mobile.status, mobile.charged_credits) == (DataRequestStatus.CHARGED, 8)
    assert [p.e164 for p in mobile.mobile_phones] == ["+447400123456"]
    # Never twice: the same person again is free, and answered from the record.
    assert world.requests.access_email("acme", rep, kai).charged_credits == 0
    assert world.requests.access_mobile("acme", rep, kai).charged_credits == 0
    balance = world.accounts.ledger.balance(world.accounts.team("acme").id)
    assert (balance.available_credits, balance.held_credits) == (91, 0) and _charged(world) == 9
    # Another team finds Kai in the shared database now: the vendor is not asked again.
    calls_before = world.hunter.calls
    other = world.requests.access_email("other", "rep@other.test", kai)
    assert other.charged_credits == 1 and other.email.source == "database" and world.hunter.calls == calls_before


def test_a_failing_waterfall_releases_the_hold(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["broken"])
    pid = world.person("Kai Wu", "hunted.test")
    result = world.requests.access_email("acme", "rep@acme.test", pid)
    assert (result.status, result.charged_credits) == (DataRequestStatus.NOT_FOUND, 0)
    balance = world.accounts.ledger.balance(world.accounts.team("acme").id)
    assert (balance.available_credits, balance.held_credits) == (100, 0)


def test_concurrent_requests_for_one_person_charge_once_and_ask_the_vendor_once(world: World) -> None:
    world.waterfalls.set("acme", email_sources=["hunter"], validate_email=True)
    world.directory["wu"] = hunter_found(DELIVERABLE)
    pid = world.person("Kai Wu", "hunted.test")
    results, errors = [], []

    def go() -> None:
        try:
            results.append(world.requests.access_email("acme", "rep@acme.test", pid))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.charged_credits for r in results) == [0, 0, 0, 0, 0, 1]
    assert {r.email.address for r in results} == {DELIVERABLE}
    assert _charged(world) == 1 and world.hunter.calls == 1


BEHAVIOURS = ["deliverable", "undeliverable", "accept_all", "not_found", "http_500", "bad_json"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    behaviours=st.lists(
        st.tuples(st.sampled_from(BEHAVIOURS), st.booleans(), st.integers(1, 3)), min_size=1, max_size=4
    )
)
def test_property_credits_move_only_for_validated_finds_and_only_once(world: World, behaviours) -> None:
    ledger = world.accounts.ledger
    team_id = world.accounts.team("acme").id
    for behaviour, validate, repeats in behaviours:
        world.waterfalls.set("acme", email_sources=["database", "hunter"], validate_email=validate)
        last = f"p{len(world.directory)}x"
        world.directory[last] = {
            "deliverable": hunter_found(DELIVERABLE),
            "undeliverable": hunter_found(UNDELIVERABLE),
            "accept_all": hunter_found(f"{last}@catchall.test", status="accept_all"),
            "not_found": hunter_not_found(),
            "http_500": Reply(500, b""),
            "bad_json": Reply(200, b"]["),
        }[behaviour]
        pid = world.person(f"Some {last}", "hunted.test")
        before = ledger.balance(team_id).available_credits
        charged = [world.requests.access_email("acme", "rep@acme.test", pid).charged_credits for _ in range(repeats)]
        expected = 1 if (behaviour == "deliverable" and validate) else 0
        assert charged == [expected] + [0] * (repeats - 1), (behaviour, validate)
        after = ledger.balance(team_id)
        assert before - after.available_credits == expected and after.held_credits == 0
