"""A team, a shared contact world and a loopback HubSpot holding the team's CRM, for the CRM tests."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from core.normalize import ContactQuery
from core.people.matching import match_contact
from core.secrets import generate_key
from core.services import Services
from core.settings import Settings
from storage.models.enums import ContactSource, Role
from tests.crm.hubspot_server import HubSpotServer
from tests.enrichment import world as w

TOKEN = "pat-na1-test-token"
# Columns a CRM holds that are not business contact data: never read, never stored anywhere.
PRIVATE_MARKERS = {
    "lifecyclestage": "zz-stage-opportunity",
    "deal_amount": "987654321",
    "hubspot_owner_id": "zz-owner-42",
}


@dataclass
class CrmWorld:
    svc: Services
    server: HubSpotServer
    team: str
    people: list[w.Person]
    ids: dict[int, str]  # person index -> CRM contact id


def services(db_url: str, server: HubSpotServer) -> Services:
    settings = Settings(
        _env_file=None, database_url=db_url, development=True, secret_keys=SecretStr(generate_key()),
        hubspot_api_url=server.url, crm_cursor_overlap_s=0,
    )  # fmt: skip
    return Services.from_settings(settings)


def build(db_url: str, server: HubSpotServer, n: int, *, team: str = "acme", existing: int = 0,
          strangers: int = 0, seed: bool = True) -> CrmWorld:  # fmt: skip
    """`n` shared people in the CRM (a CRM contact each, no email or title in the CRM), the first
    `existing` of them already the team's contacts, plus `strangers` people nobody shares."""
    svc = services(db_url, server)
    people = w.people(n)
    if seed:
        w.seed(svc.engine, people)
    svc.accounts.create_team(team, plan="basic")
    admin = svc.accounts.add_member(team, f"admin@{team}.test", role=Role.ADMIN)
    if existing:
        svc.team_contacts.save(admin, person_ids(svc, people[:existing]), ContactSource.SLACK)
    crm_ids = {}
    for i, p in enumerate(people):
        crm_ids[i] = server.add(firstname=p.first, lastname=p.last, company="Initech",
                                website=f"https://{w.DOMAIN}", **PRIVATE_MARKERS)  # fmt: skip
    for i in range(strangers):
        server.add(firstname=f"Strange{i}", lastname=f"Person{i}", company="Globex", website="globex.example",
                   email=f"strange{i}@globex.example", jobtitle="Buyer", **PRIVATE_MARKERS)  # fmt: skip
    return CrmWorld(svc, server, team, people, crm_ids)


def person_ids(svc: Services, people: list[w.Person]) -> list[int]:
    out = []
    for p in people:
        result = match_contact(svc.engine, ContactQuery(first_name=p.first, last_name=p.last, domain=w.DOMAIN))
        assert result.best is not None and result.best.person_id is not None
        out.append(result.best.person_id)
    return out
