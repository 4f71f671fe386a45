"""REST API v1 on SQLite and PostgreSQL: keys, every money rule, problems, idempotency, rate limits."""

from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import update

from storage.models import Plan
from storage.models.enums import Feature, TransferKind
from tests.api.conftest import ApiWorld
from tests.rate_clock import pin_rate_window

PROBLEM = "application/problem+json"


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _charges(world: ApiWorld, team_id: int | None = None):
    transfers = world.services.ledger.transfers(team_id or world.team_id)
    return [t for t in transfers if t.kind in (TransferKind.POST, TransferKind.SPEND)]


def _available(world: ApiWorld, team_id: int | None = None) -> int:
    return world.services.ledger.balance(team_id or world.team_id).available_credits


def _set_plan(world: ApiWorld, **values) -> None:
    with world.services.engine.begin() as conn:
        conn.execute(update(Plan.__table__).where(Plan.__table__.c.name == "free").values(**values))


def test_openapi_document_and_reference_page(world: ApiWorld) -> None:
    client = world.client()
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/people/match", "/api/v1/people/bulk_match", "/api/v1/credits", "/api/v1/usage"} <= set(
        doc["paths"]
    )
    match = doc["paths"]["/api/v1/people/match"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in match["parameters"])
    assert PROBLEM in match["responses"]["422"]["content"]
    assert {"bearerKey", "headerKey"} <= set(doc["components"]["securitySchemes"])
    page = client.get("/api/docs")
    assert page.status_code == 200 and b"openapi.json" in page.data
    # The page's assets come from the app (works offline), never from a CDN.
    assert b"cdn" not in page.data.lower() and b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        served = client.get(f"/api/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.data) > 1000, asset
    assert client.get("/api/docs/assets/../core.py").status_code == 404
    assert client.get("/api/docs/assets/swagger-editor.js").status_code == 404  # only what the page uses


def test_keys_missing_wrong_revoked_and_both_headers(world: ApiWorld) -> None:
    client = world.client()
    for headers in ({}, {"X-Api-Key": "trb_nope"}, _auth("x" * 500)):
        response = client.get("/api/v1/credits", headers=headers)
        assert response.status_code == 401 and response.mimetype == PROBLEM
        assert response.get_json()["type"].endswith(":unauthorized")
    assert client.get("/api/v1/credits", headers=_auth(world.key)).status_code == 200
    assert client.get("/api/v1/credits", headers={"X-Api-Key": world.key}).status_code == 200
    [info] = world.services.api.keys.list("acme")
    assert info.prefix and info.prefix in world.key and info.member_email == "rep@acme.test"
    world.services.api.keys.revoke("acme", info.prefix)
    assert client.get("/api/v1/credits", headers=_auth(world.key)).status_code == 401


def test_keys_are_stored_hashed(world: ApiWorld) -> None:
    from sqlalchemy import select

    from storage.models import ApiKey

    with world.services.engine.begin() as conn:
        stored = [tuple(r) for r in conn.execute(select(ApiKey.__table__.c.prefix, ApiKey.__table__.c.secret_hash))]
    assert stored and all(world.key not in "".join(row) for row in stored)


def test_match_charges_a_verified_email_once_across_identifiers(world: ApiWorld) -> None:
    client = world.client()
    first = client.post("/api/v1/people/match", json={"email": "jane.doe@acmecorp.test"}, headers=_auth(world.key))
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    data = body["data"]
    assert data["person"]["name"] == "Jane Doe" and data["person"]["title"] == "VP Sales"
    assert data["email"]["address"] == "jane.doe@acmecorp.test" and data["email"]["status"] == "verified"
    assert data["office_phone"]["e164"] == "+15125550147" and data["mobile_phones"] == []
    assert data["credits_charged"] == 1 and body["meta"]["credits_charged"] == 1 and not data["already_accessed"]
    for query in (
        {"id": world.jane},
        {"linkedin_url": "https://linkedin.com/in/janedoe/"},
        {"name": "Jane Doe", "domain": "acmecorp.test"},
        {"first_name": "Jane", "last_name": "Doe", "company": "Acme Corp"},
    ):
        again = client.post("/api/v1/people/match", json=query, headers=_auth(world.key)).get_json()["data"]
        assert again["credits_charged"] == 0 and again["already_accessed"], query
        assert again["email"]["address"] == "jane.doe@acmecorp.test"
    assert _available(world) == 99
    [charge] = _charges(world)
    assert charge.meta.feature == "api" and charge.meta.category == "email"


def test_a_person_accessed_in_slack_or_csv_is_free_in_the_api(world: ApiWorld) -> None:
    dr = world.services.data_requests
    dr.access_email("acme", "rep@acme.test", world.jane, feature=Feature.SLACK)
    dr.access_mobile("acme", "admin@acme.test", world.jane, feature=Feature.CSV)
    assert _available(world) == 91
    response = world.client().post(
        "/api/v1/people/match", json={"id": world.jane, "reveal": ["email", "mobile"]}, headers=_auth(world.key)
    )
    data = response.get_json()["data"]
    assert data["credits_charged"] == 0 and data["already_accessed"]
    assert data["mobile_phones"][0]["e164"] == "+15125550199" and data["email"]["status"] == "verified"
    assert _available(world) == 91


def test_unverified_and_empty_results_are_free_mobile_once_when_found(world: ApiWorld) -> None:
    client = world.client()
    ravi = client.post("/api/v1/people/match", json={"id": world.ravi}, headers=_auth(world.key)).get_json()["data"]
    assert ravi["email"]["status"] == "accept_all" and ravi["credits_charged"] == 0
    nobody = client.post(
        "/api/v1/people/match", json={"id": world.nobody, "reveal": ["email", "mobile"]}, headers=_auth(world.key)
    ).get_json()["data"]
    assert nobody["email"] is None and nobody["mobile_phones"] == [] and nobody["credits_charged"] == 0
    mobile = client.post(
        "/api/v1/people/match", json={"id": world.jane, "reveal": ["mobile"]}, headers=_auth(world.key)
    ).get_json()["data"]
    assert mobile["credits_charged"] == 8 and mobile["email"] is None and mobile["office_phone"] is None
    looked = client.post("/api/v1/people/match", json={"id": world.jane, "reveal": []}, headers=_auth(world.key))
    assert looked.get_json()["data"]["credits_charged"] == 0 and looked.get_json()["data"]["email"] is None
    assert _available(world) == 92


def test_another_team_pays_for_its_own_access_and_sees_nothing_of_ours(world: ApiWorld) -> None:
    client = world.client()
    client.post("/api/v1/people/match", json={"id": world.jane}, headers=_auth(world.key))
    theirs = client.post("/api/v1/people/match", json={"id": world.jane}, headers=_auth(world.other_key))
    assert theirs.get_json()["data"]["credits_charged"] == 1  # net-new is per team
    usage = client.get("/api/v1/usage", headers=_auth(world.other_key)).get_json()["data"]
    assert [e["user"] for e in usage] == ["spy@other.test"]
    # A member may see only their own usage: asking for anyone else is refused before any lookup,
    # so it says nothing about whether that member exists in some team.
    spying = client.get("/api/v1/usage?member=rep@acme.test", headers=_auth(world.other_key))
    assert spying.status_code == 403 and "data" not in spying.get_json()
    assert "rep@acme.test" not in spying.get_json()["detail"]
    for unknown in (10**9, 2**40):  # 2**40: beyond PostgreSQL's INTEGER, still just nobody
        missing = client.post("/api/v1/people/match", json={"id": unknown}, headers=_auth(world.key))
        assert missing.status_code == 404 and missing.mimetype == PROBLEM


def test_not_enough_credits_is_402_and_reveals_nothing(world: ApiWorld) -> None:
    world.services.accounts.create_plan("empty", monthly_credits=0)
    world.services.accounts.create_team("poor", plan="empty")
    world.services.accounts.add_member("poor", "rep@poor.test")
    _, key = world.services.api.keys.create("poor", "rep@poor.test", "k")
    response = world.client().post("/api/v1/people/match", json={"id": world.jane}, headers=_auth(key))
    assert response.status_code == 402 and response.mimetype == PROBLEM
    assert "jane.doe" not in response.get_data(as_text=True)


def test_bad_input_is_a_problem_naming_the_field(world: ApiWorld) -> None:
    client = world.client()
    bad = client.post("/api/v1/people/match", json={"id": 1, "reveal": ["fax"]}, headers=_auth(world.key))
    assert bad.status_code == 422 and bad.mimetype == PROBLEM
    problem = bad.get_json()
    assert problem["pointer"] == "/reveal/0" and problem["type"].endswith(":validation-error")
    assert problem["status"] == 422 and problem["title"]
    nothing = client.post("/api/v1/people/match", json={}, headers=_auth(world.key))
    assert nothing.status_code == 422 and nothing.get_json()["pointer"] == "/person"
    name_only = client.post("/api/v1/people/match", json={"name": "Jane Doe"}, headers=_auth(world.key))
    assert name_only.status_code == 422 and name_only.get_json()["pointer"] == "/company"
    malformed = client.post(
        "/api/v1/people/match", data=b'{"id": 1', content_type="application/json", headers=_auth(world.key)
    )
    assert malformed.status_code == 400 and malformed.mimetype == PROBLEM
    assert malformed.get_json()["type"].endswith(":malformed-request")
    unknown = client.get("/api/v1/nope", headers=_auth(world.key))
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM


def test_a_body_over_the_limit_is_refused_unread(world: ApiWorld, app_url: str) -> None:
    from web.api.blueprint import MAX_API_BODY_BYTES

    host, port = app_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    declared = 64 * MAX_API_BODY_BYTES  # announced, never sent: the answer comes before the body
    conn.putrequest("POST", "/api/v1/people/match")
    for name, value in {**_auth(world.key), "Content-Type": "application/json"}.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(declared))
    conn.endheaders(b"{")
    response = conn.getresponse()
    assert response.status == 413 and response.getheader("Content-Type") == PROBLEM
    assert json.loads(response.read())["type"].endswith(":body-too-large")
    conn.close()
    small = world.client().post(
        "/api/v1/people/match", data=b"x" * (MAX_API_BODY_BYTES + 1), content_type="application/json",
        headers=_auth(world.key),
    )
    assert small.status_code == 413 and small.get_json()["type"].endswith(":body-too-large")


def test_bulk_match_one_result_per_input_in_order(world: ApiWorld) -> None:
    client = world.client()
    people = [{"id": world.jane}, {"email": "nobody@nowhere.test"}, {"id": world.ravi}, {"name": "Solo"}]
    response = client.post("/api/v1/people/bulk_match", json={"people": people}, headers=_auth(world.key))
    assert response.status_code == 200
    body = response.get_json()
    assert [item["index"] for item in body["data"]] == [0, 1, 2, 3]
    assert [item["ok"] for item in body["data"]] == [True, False, True, False]
    assert body["data"][1]["error"]["status"] == 404
    assert body["data"][3]["error"]["pointer"] == "/people/3/company"
    assert body["meta"] == {"credits_charged": 1, "matched": 2, "failed": 2}
    assert _available(world) == 99
    too_many = client.post("/api/v1/people/bulk_match", json={"people": [{"id": 1}] * 101}, headers=_auth(world.key))
    assert too_many.status_code == 422 and too_many.get_json()["pointer"] == "/people"


def test_idempotent_replay_and_conflict(world: ApiWorld) -> None:
    client = world.client()
    headers = {**_auth(world.key), "Idempotency-Key": "order-17"}
    first = client.post("/api/v1/people/match", json={"id": world.jane, "reveal": ["mobile"]}, headers=headers)
    replay = client.post("/api/v1/people/match", json={"reveal": ["mobile"], "id": world.jane}, headers=headers)
    assert first.get_json() == replay.get_json() and replay.get_json()["meta"]["credits_charged"] == 8
    assert replay.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    conflict = client.post("/api/v1/people/match", json={"id": world.ravi}, headers=headers)
    assert conflict.status_code == 409 and conflict.get_json()["type"].endswith(":idempotency-conflict")
    other_path = client.post("/api/v1/people/bulk_match", json={"people": [{"id": world.jane}]}, headers=headers)
    assert other_path.status_code == 409
    assert _available(world) == 92 and len(_charges(world)) == 1
    # Another key's Idempotency-Key of the same name is its own.
    theirs = client.post(
        "/api/v1/people/match", json={"id": world.jane, "reveal": ["mobile"]},
        headers={**_auth(world.other_key), "Idempotency-Key": "order-17"},
    )
    assert theirs.status_code == 200 and "Idempotent-Replayed" not in theirs.headers


def test_a_failed_call_releases_its_idempotency_key(world: ApiWorld) -> None:
    client = world.client()
    headers = {**_auth(world.key), "Idempotency-Key": "retry-me"}
    assert client.post("/api/v1/people/match", json={"id": 10**9}, headers=headers).status_code == 404
    again = client.post("/api/v1/people/match", json={"id": 10**9}, headers=headers)
    assert again.status_code == 404 and "Idempotent-Replayed" not in again.headers


def test_credits_and_usage_pages(world: ApiWorld) -> None:
    client = world.client()
    credits = client.get("/api/v1/credits", headers=_auth(world.key)).get_json()["data"]
    assert credits["available_credits"] == 100 and credits["held_credits"] == 0
    assert credits["lots"][0]["remaining_credits"] == 100 and credits["cycle_ends_at"]
    for body in ({"id": world.jane}, {"id": world.jane, "reveal": ["mobile"]}):
        client.post("/api/v1/people/match", json=body, headers=_auth(world.key))
    world.services.data_requests.access_email("acme", "admin@acme.test", world.ravi, feature=Feature.SLACK)
    assert client.get("/api/v1/credits", headers=_auth(world.key)).get_json()["data"]["available_credits"] == 91
    seen, cursor = [], None
    while True:
        url = "/api/v1/usage?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=_auth(world.key)).get_json()
        seen += page["data"]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert [(e["category"], e["credits"], e["feature"]) for e in seen] == [("mobile", 8, "api"), ("email", 1, "api")]
    mobile = client.get("/api/v1/usage?category=mobile", headers=_auth(world.key)).get_json()["data"]
    assert [e["credits"] for e in mobile] == [8]
    slack = client.get("/api/v1/usage?feature=slack", headers=_auth(world.key)).get_json()["data"]
    assert slack == []
    by_member = client.get("/api/v1/usage?member=rep@acme.test", headers=_auth(world.key)).get_json()["data"]
    assert len(by_member) == 2
    bad = client.get("/api/v1/usage?cursor=notacursor", headers=_auth(world.key))
    assert bad.status_code == 422 and bad.get_json()["pointer"] == "/cursor"


def test_rate_limit_per_key_from_the_plan(world: ApiWorld) -> None:
    _set_plan(world, api_requests_per_minute=3)
    pin_rate_window(world.services)
    client = world.client()
    answers = [client.get("/api/v1/credits", headers=_auth(world.key)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    limited = answers[3]
    assert limited.mimetype == PROBLEM and int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["type"].endswith(":rate-limited")
    # Another key has its own budget.
    assert client.get("/api/v1/credits", headers=_auth(world.other_key)).status_code == 200


def _match_concurrently(app_url: str, key: str, person: int, clients: int, idempotency_key: str | None) -> list:
    barrier = threading.Barrier(clients)

    def one(i: int):
        headers = _auth(key)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        barrier.wait()
        return requests.post(f"{app_url}/api/v1/people/match", json={"id": person}, headers=headers, timeout=60)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def test_the_same_person_matched_at_once_is_charged_once(world: ApiWorld, app_url: str) -> None:
    answers = _match_concurrently(app_url, world.key, world.jane, 8, None)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["data"]["credits_charged"] for a in answers) == 1
    assert {a.json()["data"]["email"]["address"] for a in answers} == {"jane.doe@acmecorp.test"}
    same_key = _match_concurrently(app_url, world.other_key, world.jane, 8, "same-key")
    assert all(a.status_code == 200 for a in same_key), [a.text for a in same_key]
    assert {a.json()["meta"]["credits_charged"] for a in same_key} == {1}  # every client sees the one answer
    assert _available(world) == 99 and _available(world, world.other_team_id) == 99
    assert len(_charges(world)) == 1 and len(_charges(world, world.other_team_id)) == 1
