"""`DataRequests.cost_of`: what a settled request cost and what paid it, for the member and front end
that settled it since a given instant (a resumed job asks it instead of reading ledger rows)."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import Accounts
from core.data_requests import Budget, DataRequests, RequestCost
from core.ledger import UsageMeta
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.sources.database import DatabaseSource
from storage.models.enums import Category, EmailStatus, Feature, PhoneKind, PhoneStatus
from storage.timeutil import utcnow


@pytest.fixture
def world(engine: Engine):
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="free")  # 100 credits, email 1, mobile 8
    member = accounts.add_member("acme", "rep@acme.test")
    accounts.add_member("acme", "other@acme.test")

    def person(name, **kw):
        return add_person(engine, NewPerson(full_name=name, company="Initech", domain="initech.test", **kw))

    people = {
        "verified": person("Vera Fied", emails=[NewEmail("vera@initech.test", EmailStatus.VERIFIED, 97, utcnow())]),
        "catchall": person("Cat Chall", emails=[NewEmail("cat@initech.test", EmailStatus.ACCEPT_ALL, 60, utcnow())]),
        "mobile": person("Mo Bile", phones=[NewPhone("+447700900123", PhoneKind.MOBILE, PhoneStatus.UNKNOWN, None)]),
        "third": person("Thi Rd", emails=[NewEmail("thi@initech.test", EmailStatus.VERIFIED, 97, utcnow())]),
    }
    service = DataRequests(engine, DatabaseSource(engine), accounts=accounts, hold_timeout_s=30, lease_s=5)
    return service, accounts, team, member, people


def test_cost_of_names_the_credits_and_what_paid_them(world) -> None:
    service, accounts, team, member, people = world
    since = utcnow() - timedelta(seconds=1)
    own = service.access_email("acme", "rep@acme.test", people["verified"], feature=Feature.CSV)
    wallet = service.access_mobile(
        "acme", "rep@acme.test", people["mobile"], feature=Feature.CSV, budget=Budget.uncapped()
    )
    cap = accounts.ledger.hold(team.id, 5, key="job", timeout_s=600, meta=UsageMeta(category=Category.EMAIL))
    capped = service.access_email("acme", "rep@acme.test", people["third"], feature=Feature.CSV, budget=Budget(cap.id))
    free = service.access_email("acme", "rep@acme.test", people["catchall"], feature=Feature.CSV)

    def cost(request_id, **kw):
        args = dict(member_id=member.id, feature=Feature.CSV, settled_since=since) | kw
        return service.cost_of(request_id, **args)

    # Its own hold: the charge was posted from the request's hold; the wallet: charged directly.
    assert cost(own.request_id) == RequestCost(1, own_hold_id(accounts, team.id, own.request_id))
    assert cost(wallet.request_id) == RequestCost(8, None)
    assert cost(capped.request_id) == RequestCost(1, cap.id)
    assert cost(free.request_id) == RequestCost(0, None)
    # Settled by another member, through another front end, or before the instant asked about: None.
    other = accounts.member("other@acme.test", team.id)
    assert cost(own.request_id, member_id=other.id) is None
    assert cost(own.request_id, feature=Feature.SLACK) is None
    assert cost(own.request_id, settled_since=utcnow() + timedelta(seconds=1)) is None


def own_hold_id(accounts, team_id, request_id):
    posts = [t for t in accounts.ledger.transfers(team_id) if t.key == f"dr:{request_id}:1:post"]
    assert len(posts) == 1 and posts[0].hold_id is not None
    return posts[0].hold_id
