"""Team contacts over the REST API (/contacts, /lists, /contacts/export) on SQLite and PostgreSQL: the
same core the CLI and Slack use, isolated by team, exports charged once per contact."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from core.people.contacts import NewPerson, add_person
from storage.models import Plan
from storage.models.enums import ContactSource, Feature
from tests.api.conftest import ApiWorld, serve

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXPORT_PRICE = 2


@dataclass
class Contacts:
    world: ApiWorld
    admin_key: str
    ids: dict[str, int]  # jane, ravi (rep's), nobody, evil (admin's); spy_jane (the other team's)

    def get(self, path: str, key: str | None = None, **params):
        return self.world.client().get(f"/api/v1{path}", query_string=params, headers=_auth(key or self.world.key))

    def post(self, path: str, body: dict, key: str | None = None, **headers):
        headers.update(_auth(key or self.world.key))
        return self.world.client().post(f"/api/v1{path}", json=body, headers=headers)

    def available(self) -> int:
        return self.get("/credits").get_json()["data"]["available_credits"]


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def cw(world: ApiWorld) -> Contacts:
    services = world.services
    with services.engine.begin() as conn:
        conn.execute(update(Plan.__table__).values(price_export_credits=EXPORT_PRICE))
    accounts, tc = services.accounts, services.team_contacts
    rep = accounts.member("rep@acme.test", world.team_id)
    admin = accounts.member("admin@acme.test", world.team_id)
    spy = accounts.member("spy@other.test", world.other_team_id)
    evil = add_person(services.engine, NewPerson(full_name='=HYPERLINK("http://x.test")', company="Acme Corp"))
    tc.save(rep, [world.jane], ContactSource.SLACK, now=T0)
    tc.save(rep, [world.ravi], ContactSource.CSV, now=T0 + timedelta(days=1))
    tc.save(admin, [world.nobody], ContactSource.CRM, now=T0 + timedelta(days=2))
    tc.save(admin, [evil], ContactSource.CRM, now=T0 + timedelta(days=3))
    tc.save(spy, [world.jane], ContactSource.SLACK, now=T0)
    by_person = {c.person_id: c.id for c in tc.find(admin).contacts}
    ids = {"jane": by_person[world.jane], "ravi": by_person[world.ravi], "nobody": by_person[world.nobody],
           "evil": by_person[evil], "spy_jane": tc.find(spy).contacts[0].id}  # fmt: skip
    _, admin_key = services.api.keys.create("acme", "admin@acme.test", "admin")
    return Contacts(world, admin_key, ids)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [c["id"] for c in response.get_json()["data"]]


# ---- finding ----------------------------------------------------------------------------------


def test_contacts_are_listed_newest_first_and_paged_by_cursor(cw: Contacts) -> None:
    everyone = _ids(cw.get("/contacts"))
    assert everyone == [cw.ids[k] for k in ("evil", "nobody", "ravi", "jane")]
    seen, cursor = [], None
    while True:
        params = {"limit": 1, "sort": "saved_asc"} | ({"cursor": cursor} if cursor else {})
        body = cw.get("/contacts", **params).get_json()
        seen += [c["id"] for c in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(everyone))
    assert _ids(cw.get("/contacts", sort="name", limit=200))[0] == cw.ids["evil"]  # "=" sorts first


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"email_status": "verified"}, ["jane"]),
        ({"email_status": "accept_all,unavailable"}, ["evil", "nobody", "ravi"]),
        ({"has_phone": "true"}, ["jane"]),
        ({"has_phone": "false"}, ["evil", "nobody", "ravi"]),
        ({"line_type": "mobile"}, ["jane"]),
        ({"owner": "me"}, ["ravi", "jane"]),
        ({"owner": "admin@acme.test"}, ["evil", "nobody"]),
        ({"owner": "none"}, []),
        ({"company": "GLOBEX"}, ["ravi"]),
        ({"company": "acmecorp.test"}, ["jane"]),
        ({"source": "crm"}, ["evil", "nobody"]),
        ({"q": "doe"}, ["jane"]),
        ({"saved_since": "2026-03-02T00:00:00Z", "saved_until": "2026-03-03T13:00:00"}, ["nobody", "ravi"]),
    ],
)
def test_filters(cw: Contacts, params: dict, expected: list[str]) -> None:
    assert _ids(cw.get("/contacts", **params)) == [cw.ids[k] for k in expected]


def test_a_contact_is_shown_with_its_data_and_lists(cw: Contacts) -> None:
    cw.post("/lists", {"name": "Q3"})
    list_id = cw.get("/lists").get_json()["data"][0]["id"]
    cw.post(f"/lists/{list_id}/add", {"contact_ids": [cw.ids["jane"]]})
    data = cw.get(f"/contacts/{cw.ids['jane']}").get_json()["data"]
    assert data["name"] == "Jane Doe" and data["email"] == "jane.doe@acmecorp.test"
    assert data["email_status"] == "verified" and data["owner_email"] == "rep@acme.test"
    assert {p["line_type"] for p in data["phones"]} == {"fixed_line", "mobile"}
    assert data["lists"] == ["Q3"] and data["source"] == "slack"


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"email_status": "great"}, "/email_status"),
        ({"source": "fax"}, "/source"),
        ({"owner": "stranger@else.test"}, "/owner"),
        ({"owner": "spy@other.test"}, "/owner"),
        ({"owner": "9999999999"}, "/owner"),  # larger than any member id (a 32-bit column)
        ({"owner": "0"}, "/owner"),
        ({"limit": "0"}, "/limit"),
        ({"sort": "random"}, "/sort"),
        ({"cursor": "not-a-cursor"}, "/cursor"),
        ({"has_phone": "maybe"}, "/has_phone"),
    ],
)
def test_bad_parameters_are_problems_naming_them(cw: Contacts, params: dict, pointer: str) -> None:
    response = cw.get("/contacts", **params)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.get_json()["pointer"] == pointer, response.get_json()


def test_a_cursor_of_another_filter_is_refused(cw: Contacts) -> None:
    cursor = cw.get("/contacts", limit=1).get_json()["meta"]["next_cursor"]
    response = cw.get("/contacts", limit=1, cursor=cursor, source="crm")
    assert response.status_code == 422 and response.get_json()["pointer"] == "/cursor"


# ---- isolation --------------------------------------------------------------------------------


def test_another_teams_contacts_and_lists_are_not_found_everywhere(cw: Contacts) -> None:
    theirs = cw.ids["spy_jane"]
    created = cw.post("/lists", {"name": "Theirs"}, key=cw.world.other_key).get_json()["data"]["id"]
    mine = cw.post("/lists", {"name": "Mine"}).get_json()["data"]["id"]
    answers = [
        cw.get(f"/contacts/{theirs}"),
        cw.get(f"/contacts/{2**40}"),
        cw.get(f"/contacts/{cw.ids['jane']}", key=cw.world.other_key),
        cw.get("/contacts", list_id=created),
        cw.get(f"/lists/{created}"),
        cw.get(f"/lists/{2**40}"),
        cw.post(f"/lists/{created}/add", {"contact_ids": [cw.ids["jane"]]}),
        cw.post(f"/lists/{created}/remove", {"filter": {}}),
        cw.post(f"/lists/{mine}/add", {"contact_ids": [cw.ids["jane"], theirs]}),
        cw.post("/contacts/assign", {"owner": "me", "contact_ids": [theirs]}, key=cw.admin_key),
        cw.post("/contacts/export/preview", {"list_id": created}),
        cw.post("/contacts/export", {"list_id": created}),
    ]
    for response in answers:
        assert response.status_code == 404, response.get_json()
        assert response.mimetype == "application/problem+json"
        assert "Jane" not in response.get_data(as_text=True) and "Theirs" not in response.get_data(as_text=True)
    assert cw.get(f"/lists/{mine}").get_json()["data"]["contacts"] == 0  # the refused add changed nothing
    assert cw.available() == 100


# ---- assigning --------------------------------------------------------------------------------


def test_a_member_assigns_only_their_own_contacts(cw: Contacts) -> None:
    given = cw.post("/contacts/assign", {"owner": "admin@acme.test", "contact_ids": [cw.ids["jane"]]})
    assert given.status_code == 200 and given.get_json()["data"] == {"matched": 1, "changed": 1}
    refused = cw.post("/contacts/assign", {"owner": "me", "contact_ids": [cw.ids["nobody"], cw.ids["ravi"]]})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert _ids(cw.get("/contacts", owner="me")) == [cw.ids["ravi"]]  # nothing changed by the refusal
    # By filter a member selects only their own: the admin's contacts stay the admin's.
    by_filter = cw.post("/contacts/assign", {"owner": "admin@acme.test", "filter": {"company": "globex"}})
    assert by_filter.get_json()["data"] == {"matched": 1, "changed": 1}
    assert _ids(cw.get("/contacts", owner="me")) == []


def test_an_admin_assigns_any_of_the_teams_contacts(cw: Contacts) -> None:
    rep_id = cw.world.services.accounts.member("rep@acme.test", cw.world.team_id).id
    response = cw.post("/contacts/assign", {"owner": str(rep_id), "filter": {"source": "crm"}}, key=cw.admin_key)
    assert response.get_json()["data"] == {"matched": 2, "changed": 2}
    assert len(_ids(cw.get("/contacts", owner="rep@acme.test"))) == 4


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"owner": "spy@other.test", "contact_ids": [1]}, "/owner"),
        ({"owner": "me"}, "/contact_ids"),
        ({"owner": "me", "contact_ids": [1], "filter": {}}, "/contact_ids"),
        ({"owner": "me", "contact_ids": [0]}, "/contact_ids/0"),
        ({"owner": "me", "filter": {"nope": 1}}, "/filter/nope"),
    ],
)
def test_bad_assignments_are_problems_naming_the_field(cw: Contacts, body: dict, pointer: str) -> None:
    response = cw.post("/contacts/assign", body)
    assert response.status_code == 422 and response.get_json()["pointer"] == pointer, response.get_json()


# ---- lists ------------------------------------------------------------------------------------


def test_lists_are_created_filled_and_emptied(cw: Contacts) -> None:
    created = cw.post("/lists", {"name": "Q3 push"})
    assert created.status_code == 201
    list_id = created.get_json()["data"]["id"]
    assert cw.post("/lists", {"name": "Q3 push"}).status_code == 409
    added = cw.post(f"/lists/{list_id}/add", {"contact_ids": [cw.ids["jane"], cw.ids["ravi"]]})
    assert added.get_json()["data"] == {"matched": 2, "changed": 2}
    again = cw.post(f"/lists/{list_id}/add", {"filter": {"company": "globex.test"}})
    assert again.get_json()["data"] == {"matched": 1, "changed": 0}
    assert sorted(_ids(cw.get("/contacts", list_id=list_id))) == sorted([cw.ids["jane"], cw.ids["ravi"]])
    assert cw.get(f"/lists/{list_id}").get_json()["data"]["contacts"] == 2
    removed = cw.post(f"/lists/{list_id}/remove", {"filter": {"email_status": "verified"}})
    assert removed.get_json()["data"] == {"matched": 1, "changed": 1}
    assert [(i["name"], i["contacts"]) for i in cw.get("/lists").get_json()["data"]] == [("Q3 push", 1)]
    numeric = cw.post("/lists", {"name": "123"})  # a number names a list id
    assert numeric.status_code == 422 and "list name" in numeric.get_json()["detail"]


# ---- exports ----------------------------------------------------------------------------------


def _export(cw: Contacts, body: dict, **headers):
    return cw.post("/contacts/export", body, **headers)


def test_an_export_streams_a_safe_csv_and_charges_what_the_preview_said(cw: Contacts) -> None:
    preview = cw.post("/contacts/export/preview", {}).get_json()["data"]
    assert preview == {"contacts": 4, "net_new": 4, "price_credits": EXPORT_PRICE, "credits": 4 * EXPORT_PRICE}
    response = _export(cw, {})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("contact_id,full_name,")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text  # formula-safe
    assert len(text.splitlines()) == 5
    assert response.headers["X-Credits-Charged"] == str(preview["credits"])
    assert response.headers["X-Export-Net-New"] == "4"
    assert cw.available() == 100 - preview["credits"]
    usage = cw.get("/usage", category="export").get_json()["data"]
    assert [(u["feature"], u["category"], u["credits"]) for u in usage] == [("api", "export", 8)]


def test_each_contact_is_charged_once_across_api_cli_and_slack_exports(cw: Contacts) -> None:
    services = cw.world.services
    rep = services.accounts.member("rep@acme.test", cw.world.team_id)
    first = services.contact_exports.export(rep, services.contact_exports.contacts.filter_from_words(
        rep, ["status:verified"]), io.BytesIO(), feature=Feature.CLI)  # fmt: skip
    assert first.credits_charged == EXPORT_PRICE  # Jane, by the CLI
    assert cw.post("/contacts/export/preview", {}).get_json()["data"]["credits"] == 3 * EXPORT_PRICE
    api_first = _export(cw, {})
    assert api_first.headers["X-Credits-Charged"] == str(3 * EXPORT_PRICE)
    api_again = _export(cw, {"filter": {"source": "crm"}})
    assert api_again.headers["X-Credits-Charged"] == "0" and api_again.headers["X-Export-Contacts"] == "2"
    slack = services.contact_exports.export(rep, services.contact_exports.contacts.filter_from_words(
        rep, []), io.BytesIO(), feature=Feature.SLACK)  # fmt: skip
    assert slack.credits_charged == 0 and slack.rows_written == 4
    assert cw.available() == 100 - 4 * EXPORT_PRICE


def test_a_list_is_exported_and_the_cap_is_respected(cw: Contacts) -> None:
    list_id = cw.post("/lists", {"name": "Hot"}).get_json()["data"]["id"]
    cw.post(f"/lists/{list_id}/add", {"filter": {"owner": "me"}})
    over = _export(cw, {"list_id": list_id, "max_credits": 2 * EXPORT_PRICE - 1})
    assert over.status_code == 402 and over.mimetype == "application/problem+json"
    assert cw.available() == 100
    assert cw.post("/contacts/export/preview", {"list_id": list_id}).get_json()["data"]["net_new"] == 2
    within = _export(cw, {"list_id": list_id, "max_credits": 2 * EXPORT_PRICE})
    assert within.status_code == 200 and within.headers["X-Export-Contacts"] == "2"
    assert cw.available() == 100 - 2 * EXPORT_PRICE
    both = _export(cw, {"list_id": list_id, "filter": {"list_id": list_id}})
    assert both.status_code == 422 and both.get_json()["pointer"] == "/list_id"


def test_an_export_retried_with_its_idempotency_key_streams_the_same_file_once_charged(cw: Contacts) -> None:
    first = _export(cw, {"filter": {"owner": "me"}}, **{"Idempotency-Key": "exp-1"})
    cw.world.services.team_contacts.save(
        cw.world.services.accounts.member("rep@acme.test", cw.world.team_id),
        [add_person(cw.world.services.engine, NewPerson(full_name="Late Comer"))], ContactSource.API,
    )  # fmt: skip
    again = _export(cw, {"filter": {"owner": "me"}}, **{"Idempotency-Key": "exp-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()  # the same export: the late contact is not in it
    assert again.headers["X-Export-Id"] == first.headers["X-Export-Id"]
    assert again.headers["X-Credits-Charged"] == "0"
    assert cw.available() == 100 - 2 * EXPORT_PRICE
    other = _export(cw, {"filter": {"owner": "none"}}, **{"Idempotency-Key": "exp-1"})
    assert other.status_code == 409


def test_concurrent_exports_of_the_same_contacts_charge_each_once(cw: Contacts) -> None:
    server = serve(cw.world.services)
    url = next(server)

    def export(_: int) -> requests.Response:
        return requests.post(f"{url}/api/v1/contacts/export", json={}, headers=_auth(cw.world.key), timeout=60)

    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(export, range(4)))
    finally:
        server.close()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(int(a.headers["X-Credits-Charged"]) for a in answers) == 4 * EXPORT_PRICE
    assert all(a.content.decode("utf-8-sig").count("\n") == 5 for a in answers)
    assert cw.available() == 100 - 4 * EXPORT_PRICE


FILTERS = [{}, {"source": "crm"}, {"owner": "me"}, {"email_status": "verified"}, {"q": "o"}, {"has_phone": False}]


def test_any_sequence_of_exports_charges_each_contact_once_and_as_previewed(cw: Contacts) -> None:
    exported: set[int] = set()  # the model: contacts this team has exported (across examples: one world)

    @given(st.lists(st.sampled_from(FILTERS), min_size=1, max_size=4))
    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exports(filters: list[dict]) -> None:
        for flt in filters:
            before = cw.available()
            preview = cw.post("/contacts/export/preview", {"filter": flt}).get_json()["data"]
            response = _export(cw, {"filter": flt})
            ids = {int(line.split(",")[0]) for line in response.get_data().decode("utf-8-sig").splitlines()[1:]}
            new = ids - exported
            exported.update(ids)
            assert preview["net_new"] == len(new) and preview["contacts"] == len(ids)
            assert int(response.headers["X-Credits-Charged"]) == preview["credits"] == len(new) * EXPORT_PRICE
            assert cw.available() == before - preview["credits"]

    exports()
    assert cw.available() == 100 - len(exported) * EXPORT_PRICE


def test_every_contacts_operation_is_in_the_openapi_document(cw: Contacts) -> None:
    spec = cw.world.client().get("/api/v1/openapi.json").get_json()
    expected = {
        ("/api/v1/contacts", "get"), ("/api/v1/contacts/{contact_id}", "get"), ("/api/v1/contacts/assign", "post"),
        ("/api/v1/lists", "get"), ("/api/v1/lists", "post"), ("/api/v1/lists/{list_id}", "get"),
        ("/api/v1/lists/{list_id}/add", "post"), ("/api/v1/lists/{list_id}/remove", "post"),
        ("/api/v1/contacts/export/preview", "post"), ("/api/v1/contacts/export", "post"),
    }  # fmt: skip
    for path, method in expected:
        op = spec["paths"][path][method]
        ok = op["responses"]["201" if (path, method) == ("/api/v1/lists", "post") else "200"]
        assert "content" in ok and op["responses"]["404"]["content"]["application/problem+json"]
    export = spec["paths"]["/api/v1/contacts/export"]["post"]
    assert "text/csv" in export["responses"]["200"]["content"]
    assert "X-Credits-Charged" in export["responses"]["200"]["headers"]
    assert any(p["name"] == "Idempotency-Key" for p in export["parameters"])
    assert "403" in spec["paths"]["/api/v1/contacts/assign"]["post"]["responses"]
