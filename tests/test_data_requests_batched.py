"""Money rules of the paths an enrichment job uses: `access_kinds` (email + mobile of one person in
one claim and one settle transaction) and `Budget.uncapped()` (no per-request hold: the price is
charged from the wallet at settle, only when something chargeable was found)."""

import itertools
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from core.accounts import Accounts
from core.data_requests import AccessResult, Budget, DataRequests
from core.ledger import InsufficientCredits, UsageMeta
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.sources.database import DatabaseSource
from core.waterfall import Waterfalls
from storage.db import read_transaction
from storage.models import DataRequest, SourceCall
from storage.models.enums import (
    Category,
    DataKind,
    DataRequestStatus,
    EmailStatus,
    Feature,
    PhoneKind,
    PhoneStatus,
    TransferKind,
)
from storage.timeutil import utcnow

EMAIL_PRICE, MOBILE_PRICE = 1, 8  # the free plan's prices
BOTH = [DataKind.EMAIL, DataKind.MOBILE]
_WORLDS = itertools.count()  # hypothesis examples share one database: each gets its own team


def _charges(accounts: Accounts, team_id: int) -> list:
    return [t for t in accounts.ledger.transfers(team_id) if t.kind in (TransferKind.POST, TransferKind.SPEND)]


def _world(engine: Engine, label: str):
    accounts = Accounts(engine)
    team = accounts.create_team(f"acme{label}", plan="free")  # 100 credits
    accounts.add_member(team.name, f"rep@{label}acme.test")
    fresh = utcnow()
    shapes = {  # (verified email, mobile)
        "both": (True, True),
        "email": (True, False),
        "mobile": (False, True),
        "none": (False, False),
    }
    people = {}
    for name, (email, mobile) in shapes.items():
        people[name] = add_person(
            engine,
            NewPerson(
                full_name=f"{name.title()} {label}Person",
                company="Initech",
                domain=f"initech{label}.test",
                emails=[NewEmail(f"{name}@initech{label}.test", EmailStatus.VERIFIED, 95, fresh)] if email else [],
                phones=[NewPhone(f"+4477009001{len(people):02d}", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")]
                if mobile
                else [],
            ),
        )
    # Through the waterfall (the contributor database only), so its call log rides the settle.
    waterfalls = Waterfalls(engine, {"database": DatabaseSource(engine)}, accounts=accounts)
    service = DataRequests(
        engine, DatabaseSource(engine), accounts=accounts, sources=waterfalls.for_team, hold_timeout_s=30, lease_s=5
    )
    return service, accounts, accounts.team(team.id), accounts.member(f"rep@{label}acme.test", team.id), people


def _price(result: AccessResult) -> int:
    return EMAIL_PRICE if result.kind == DataKind.EMAIL else MOBILE_PRICE


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["both", "email", "mobile", "none"]), st.sampled_from(["kinds", "email", "mobile"])),
        min_size=1,
        max_size=8,
    ),
    uncapped=st.booleans(),
)
def test_each_kind_is_charged_once_only_when_chargeable_and_the_ledger_agrees(engine, calls, uncapped) -> None:
    """Any sequence of batched and single requests: a (person, kind) is charged at most once, exactly
    when it is chargeable; what the calls report charged is what the wallet lost; nothing stays held."""
    label = f"h{next(_WORLDS)}"
    service, accounts, team, member, people = _world(engine, label)
    budget = Budget.uncapped() if uncapped else None
    reported = 0
    for who, how in calls:
        if how == "kinds":
            outcomes = service.access_kinds(team, member, people[who], BOTH, budget=budget)
            assert all(isinstance(r, AccessResult) for r in outcomes.values())
            results = list(outcomes.values())
        else:
            kind = DataKind.EMAIL if how == "email" else DataKind.MOBILE
            results = [service.access(team, member, people[who], kind, budget=budget)]
        for r in results:
            chargeable = (
                (r.email is not None and r.email.chargeable) if r.kind == DataKind.EMAIL else bool(r.mobile_phones)
            )
            assert r.charged_credits in (0, _price(r))
            assert (r.charged_credits > 0) == (chargeable and not r.already_accessed)
            reported += r.charged_credits
    expected = {
        (people[who], kind)
        for who, how in calls
        for kind in (BOTH if how == "kinds" else [DataKind.EMAIL if how == "email" else DataKind.MOBILE])
        if (kind == DataKind.EMAIL and who in ("both", "email"))
        or (kind == DataKind.MOBILE and who in ("both", "mobile"))
    }
    charges = _charges(accounts, team.id)
    assert sorted(t.meta.data_requested for t in charges) == sorted(f"person:{p} {k.value}" for p, k in expected)
    assert (
        reported
        == sum(t.amount_credits for t in charges)
        == sum(EMAIL_PRICE if k == DataKind.EMAIL else MOBILE_PRICE for _, k in expected)
    )
    balance = accounts.ledger.balance(team.id)
    assert balance.held_credits == 0 and balance.available_credits == 100 - reported


def test_concurrent_batched_and_single_requests_charge_each_kind_once(engine) -> None:
    service, accounts, team, member, people = _world(engine, "c")
    barrier = threading.Barrier(8)
    reported: list[int] = []
    errors: list[BaseException] = []

    def press(i: int) -> None:
        barrier.wait()
        try:
            if i % 3 == 0:
                outcomes = service.access_kinds(team, member, people["both"], BOTH, budget=Budget.uncapped())
                for r in outcomes.values():
                    assert isinstance(r, AccessResult), r
                    reported.append(r.charged_credits)
            else:
                kind = DataKind.EMAIL if i % 3 == 1 else DataKind.MOBILE
                budget = Budget.uncapped() if i % 2 else None
                reported.append(service.access(team, member, people["both"], kind, budget=budget).charged_credits)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(c for c in reported if c) == [EMAIL_PRICE, MOBILE_PRICE]
    assert len(_charges(accounts, team.id)) == 2
    balance = accounts.ledger.balance(team.id)
    assert balance.held_credits == 0 and balance.available_credits == 100 - EMAIL_PRICE - MOBILE_PRICE


def test_uncapped_request_the_wallet_cannot_pay_reveals_nothing_and_stays_retryable(engine) -> None:
    service, accounts, team, member, people = _world(engine, "w")
    # Spend down to 5 credits: enough for an email (1), not for a mobile (8).
    accounts.ledger.charge(team.id, 95, key="spend-down", meta=_meta(member.id))
    outcomes = service.access_kinds(team, member, people["both"], BOTH, budget=Budget.uncapped())
    assert isinstance(outcomes[DataKind.EMAIL], AccessResult) and outcomes[DataKind.EMAIL].charged_credits == 1
    refused = outcomes[DataKind.MOBILE]
    assert isinstance(refused, InsufficientCredits)
    assert "credits" in str(refused)
    with read_transaction(engine) as conn:
        row = conn.execute(
            select(DataRequest).where(DataRequest.person_id == people["both"], DataRequest.kind == DataKind.MOBILE)
        ).one()
        calls = conn.execute(select(SourceCall.kind).where(SourceCall.person_id == people["both"])).scalars().all()
    # Nothing revealed or charged for the mobile; the request can be made again.
    assert row.status == DataRequestStatus.NOT_FOUND and row.mobile_phones == [] and row.credits_charged == 0
    assert accounts.ledger.balance(team.id).available_credits == 4
    # The waterfall's calls were logged in the settle transaction, the refused kind's included; the
    # person's phone sources were asked once for both requests (the mobile one reused the answer).
    assert sorted(calls) == ["email", "phone"]
    accounts.ledger.grant(team.id, 10, key="top-up", expires_at=None)
    again = service.access(team, member, people["both"], DataKind.MOBILE, budget=Budget.uncapped())
    assert again.charged_credits == MOBILE_PRICE and [p.e164 for p in again.mobile_phones]
    assert accounts.ledger.balance(team.id).available_credits == 4 + 10 - MOBILE_PRICE


def _meta(member_id: int) -> UsageMeta:
    return UsageMeta(category=Category.EXPORT, feature=Feature.CLI, member_id=member_id, action="export")


@pytest.mark.parametrize("kinds", [[DataKind.MOBILE, DataKind.EMAIL], [DataKind.EMAIL]])
def test_access_kinds_answers_each_kind_asked_once(engine, kinds) -> None:
    service, accounts, team, member, people = _world(engine, "k")
    outcomes = service.access_kinds(team, member, people["both"], kinds + kinds)
    assert list(outcomes) == kinds
    assert sum(r.charged_credits for r in outcomes.values()) == sum(
        EMAIL_PRICE if k == DataKind.EMAIL else MOBILE_PRICE for k in kinds
    )
