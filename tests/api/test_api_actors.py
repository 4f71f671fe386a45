"""An API key acts as its member under core's actor rules, the same as Slack: a member sees their own
usage, an admin the team's; another member's usage is refused (403 problem naming who may)."""

from __future__ import annotations

from storage.models.enums import Feature
from tests.api.conftest import ApiWorld


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _spend_as_both(world: ApiWorld) -> str:
    _, admin_key = world.services.api.keys.create("acme", "admin@acme.test", "admin")
    world.services.data_requests.access_email("acme", "admin@acme.test", world.jane, feature=Feature.SLACK)
    world.client().post("/api/v1/people/match", json={"id": world.jane, "reveal": ["mobile"]}, headers=_auth(world.key))
    return admin_key


def test_a_member_key_sees_only_its_members_usage(world: ApiWorld) -> None:
    _spend_as_both(world)
    client = world.client()
    own = client.get("/api/v1/usage", headers=_auth(world.key)).get_json()["data"]
    assert own and {e["user"] for e in own} == {"rep@acme.test"}
    refused = client.get("/api/v1/usage?member=admin@acme.test", headers=_auth(world.key))
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert "admins" in refused.get_json()["detail"]


def test_an_admin_key_sees_the_whole_teams_usage(world: ApiWorld) -> None:
    admin_key = _spend_as_both(world)
    everyone = world.client().get("/api/v1/usage", headers=_auth(admin_key)).get_json()["data"]
    assert {e["user"] for e in everyone} == {"rep@acme.test", "admin@acme.test"}


def test_the_key_is_an_api_actor_of_its_member(world: ApiWorld) -> None:
    caller = world.services.api.caller(world.key)
    actor = caller.actor
    assert (actor.team_id, actor.channel.value, actor.role.value) == (world.team_id, "api", "member")
