"""Money rules through the API as a property (hypothesis), SQLite and PostgreSQL: whatever sequence
of matches, bulk matches, reveals and Slack/CSV accesses a team makes, it pays exactly once per
(person, kind) found and chargeable, and the API's `credits_charged` add up to what the ledger took."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.models.enums import DataKind, Feature
from tests.api.conftest import ApiWorld

# What each seeded person costs per kind on the free plan (email 1 if verified, mobile 8 if found).
PRICES = {("jane", "email"): 1, ("jane", "mobile"): 8, ("ravi", "email"): 0, ("ravi", "mobile"): 0,
          ("nobody", "email"): 0, ("nobody", "mobile"): 0}
_teams = itertools.count()

person = st.sampled_from(["jane", "ravi", "nobody"])
reveal = st.lists(st.sampled_from(["email", "mobile"]), max_size=2, unique=True)
step = st.one_of(
    st.tuples(st.just("match"), person, reveal),
    st.tuples(st.just("bulk"), st.lists(st.tuples(person, reveal), min_size=1, max_size=4)),
    st.tuples(st.just("slack"), person, st.sampled_from(["email", "mobile"])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(steps=st.lists(step, min_size=1, max_size=6))
def _property(world: ApiWorld, steps) -> None:
    services = world.services
    name = f"prop{next(_teams)}"
    team = services.accounts.create_team(name, plan="free")
    services.accounts.add_member(name, f"rep@{name}.test")
    _, key = services.api.keys.create(name, f"rep@{name}.test", "k")
    ids = {"jane": world.jane, "ravi": world.ravi, "nobody": world.nobody}
    client = world.client()
    headers = {"X-Api-Key": key}
    paid: set[tuple[str, str]] = set()
    reported = 0
    for kind, *args in steps:
        if kind == "match":
            who, kinds = args
            body = client.post("/api/v1/people/match", json={"id": ids[who], "reveal": kinds}, headers=headers)
            assert body.status_code == 200, body.get_json()
            reported += body.get_json()["meta"]["credits_charged"]
            paid |= {(who, k) for k in kinds}
        elif kind == "bulk":
            [items] = args
            people = [{"id": ids[who], "reveal": kinds} for who, kinds in items]
            body = client.post("/api/v1/people/bulk_match", json={"people": people}, headers=headers).get_json()
            assert all(item["ok"] for item in body["data"])
            reported += body["meta"]["credits_charged"]
            paid |= {(who, k) for who, kinds in items for k in kinds}
        else:
            who, what = args
            services.data_requests.access(team.id, f"rep@{name}.test", ids[who], DataKind(what), feature=Feature.SLACK)
            before = len(paid)
            paid.add((who, what))
            if len(paid) > before:
                reported += PRICES[(who, what)]  # paid in Slack: the API must not charge it again
    expected = sum(PRICES[p] for p in paid)
    assert reported == expected
    assert services.ledger.balance(team.id).available_credits == 100 - expected


def test_each_person_and_kind_is_paid_once_whatever_the_front_end(world: ApiWorld) -> None:
    _property(world)
