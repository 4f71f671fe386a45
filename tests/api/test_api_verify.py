"""POST /api/v1/emails/verify against the loopback mail internet (tests/mailnet), SQLite and
PostgreSQL: statuses, reasons, evidence; only definitive answers cost, at the plan's price."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from storage.models import Plan
from tests.api.conftest import mail_settings, make_world
from tests.mailnet.fixtures import mailnet  # noqa: F401  (fixture)
from tests.mailnet.net import MailNet


@pytest.fixture
def verify_world(db_url: str, mailnet: MailNet):  # noqa: F811
    world = make_world(db_url, **mail_settings(mailnet))
    yield world
    world.services.engine.dispose()


def test_only_definitive_answers_cost_at_the_plan_price(verify_world) -> None:
    client = verify_world.client()
    emails = ["alice@known.test", "nobody@known.test", "alice@catchall.test", "alice@known.test", "alice@refused.test"]
    response = client.post("/api/v1/emails/verify", json={"emails": emails}, headers={"X-Api-Key": verify_world.key})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    statuses = [item["status"] for item in body["data"]]
    assert statuses[:4] == ["verified", "invalid", "accept_all", "verified"] and statuses[4] == "unknown"
    assert body["data"][1]["reasons"] and body["data"][0]["evidence"]
    assert [item["charged"] for item in body["data"]] == [True, True, True, False, False]
    assert body["meta"] == {"credits_charged": 3, "price_credits": 1}
    ledger = verify_world.services.ledger
    assert ledger.balance(verify_world.team_id).available_credits == 97
    assert ledger.balance(verify_world.team_id).held_credits == 0
    [row] = [r for r in ledger.usage_log(verify_world.team_id) if r.action == "verify_email"]
    assert (row.credits, row.feature, row.category, row.user) == (3, "api", "api", "rep@acme.test")


def test_the_price_is_per_plan_and_unaffordable_calls_reveal_nothing(verify_world) -> None:
    with verify_world.services.engine.begin() as conn:
        conn.execute(update(Plan.__table__).where(Plan.__table__.c.name == "free").values(price_verify_credits=60))
    client = verify_world.client()
    headers = {"X-Api-Key": verify_world.key}
    two = client.post("/api/v1/emails/verify", json={"emails": ["alice@known.test", "bob@known.test"]}, headers=headers)
    assert two.status_code == 402 and two.mimetype == "application/problem+json"
    one = client.post("/api/v1/emails/verify", json={"emails": ["alice@known.test"]}, headers=headers)
    assert one.status_code == 200 and one.get_json()["meta"] == {"credits_charged": 60, "price_credits": 60}
    assert verify_world.services.ledger.balance(verify_world.team_id).available_credits == 40
    too_many = client.post("/api/v1/emails/verify", json={"emails": ["a@known.test"] * 101}, headers=headers)
    assert too_many.status_code == 422 and too_many.get_json()["pointer"] == "/emails"
