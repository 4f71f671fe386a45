"""Team accounts over the REST API (/accounts, /accounts/{id}, /accounts/assign) on SQLite and
PostgreSQL: the core service the CLI and Slack use; another team's account is 404 everywhere."""

from __future__ import annotations

from tests.api.test_api_contacts import Contacts, _ids, cw  # noqa: F401 (the fixture)


def _account_of(cw: Contacts, key: str) -> int:  # noqa: F811
    return cw.get(f"/contacts/{cw.ids[key]}").get_json()["data"]["account_id"]


def test_accounts_are_listed_shown_and_paged(cw: Contacts) -> None:  # noqa: F811
    globex = _account_of(cw, "ravi")
    everyone = cw.get("/accounts")
    assert everyone.status_code == 200, everyone.get_json()
    ids = [a["id"] for a in everyone.get_json()["data"]]
    assert globex in ids and _account_of(cw, "jane") in ids and len(ids) == len(set(ids))
    shown = cw.get(f"/accounts/{globex}").get_json()["data"]
    assert (shown["owner_email"], shown["source"], shown["contacts"]) == ("rep@acme.test", "csv", 1)
    seen, cursor = [], None
    for _ in range(len(ids) + 1):
        page = cw.get("/accounts", limit=1, **({"cursor": cursor} if cursor else {})).get_json()
        seen += [a["id"] for a in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert [a["id"] for a in cw.get("/accounts", q="GLOBEX").get_json()["data"]] == [globex]
    bad = cw.get("/accounts", source="fax")
    assert bad.status_code == 422 and "source" in bad.get_data(as_text=True)


def test_another_teams_account_is_not_found_everywhere(cw: Contacts) -> None:  # noqa: F811
    globex = _account_of(cw, "ravi")
    answers = [
        cw.get(f"/accounts/{globex}", key=cw.world.other_key),
        cw.get(f"/accounts/{2**40}"),
        cw.post("/accounts/assign", {"owner": "me", "account_ids": [globex]}, key=cw.world.other_key),
    ]
    for response in answers:
        assert response.status_code == 404, response.get_json()
        assert response.mimetype == "application/problem+json"
        assert "Globex" not in response.get_data(as_text=True)
    assert globex not in [a["id"] for a in cw.get("/accounts", key=cw.world.other_key).get_json()["data"]]


def test_assignment_follows_the_actor_rule_and_filters_contacts(cw: Contacts) -> None:  # noqa: F811
    globex, nowhere = _account_of(cw, "ravi"), _account_of(cw, "nobody")
    refused = cw.post("/accounts/assign", {"owner": "me", "account_ids": [nowhere]})  # the admin's
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    given = cw.post("/accounts/assign", {"owner": "admin@acme.test", "account_ids": [globex]})
    assert given.get_json()["data"] == {"matched": 1, "changed": 1}
    assert cw.get(f"/accounts/{globex}").get_json()["data"]["owner_email"] == "admin@acme.test"
    # The contact keeps its owner; the account's owner filters contacts.
    assert _ids(cw.get("/contacts", account_owner="admin@acme.test", q="ravi")) == [cw.ids["ravi"]]
    assert _ids(cw.get("/contacts", owner="me", q="ravi")) == [cw.ids["ravi"]]
    back = cw.post("/accounts/assign", {"owner": "rep@acme.test", "filter": {"owner": "me"}}, key=cw.admin_key)
    assert back.status_code == 200 and back.get_json()["data"]["changed"] >= 2
    both = cw.post("/accounts/assign", {"owner": "me", "account_ids": [globex], "filter": {}})
    assert both.status_code == 422
