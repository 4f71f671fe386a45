"""A team, a shared contact world and a loopback HubSpot holding the team's CRM, for the CRM tests.

Person i works at Co{i // 20} (co{i // 20}.example) as an Engineer; i % 4 = 0, 1: a verified email;
2: accept_all; 3: none on file; even i: a mobile. Its CRM contact carries the name and website (and,
for i % 3 == 0, the email on file), plus columns that are not business data (PRIVATE_MARKERS)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person_in
from core.secrets import generate_key
from core.services import Services
from core.settings import Settings
from storage.db import run_write
from storage.models.enums import ContactSource, EmailStatus, PhoneKind, PhoneStatus, Role
from storage.timeutil import utcnow
from tests.crm.hubspot_server import HubSpotServer

TOKEN = "pat-na1-test-token"
# Columns a CRM holds that are not business contact data: never read, never stored anywhere.
PRIVATE_MARKERS = {
    "lifecyclestage": "zz-stage-opportunity",
    "deal_amount": "987654321",
    "hubspot_owner_id": "zz-owner-42",
}
SEED_BATCH = 500


@dataclass(frozen=True)
class Person:
    i: int
    first: str
    last: str
    domain: str
    email: str | None
    status: EmailStatus | None
    mobile: str | None


@dataclass
class CrmWorld:
    svc: Services
    server: HubSpotServer
    team: str
    people: list[Person]
    person_ids: list[int]  # by position in `people`
    ids: dict[int, str]  # position in `people` -> CRM contact id


def people(n: int, start: int = 0) -> list[Person]:
    out = []
    for i in range(start, start + n):
        domain = f"co{i // 20}.example"
        status = [EmailStatus.VERIFIED, EmailStatus.VERIFIED, EmailStatus.ACCEPT_ALL, None][i % 4]
        email = f"first{i}.last{i}@{domain}" if status else None
        mobile = f"+1415{i:07d}" if i % 2 == 0 else None
        out.append(Person(i, f"First{i}", f"Last{i}", domain, email, status, mobile))
    return out


def seed(svc: Services, world: list[Person]) -> list[int]:
    now = utcnow()
    ids: list[int] = []
    for k in range(0, len(world), SEED_BATCH):

        def op(conn, batch=world[k : k + SEED_BATCH]) -> list[int]:
            return [
                add_person_in(
                    conn,
                    NewPerson(
                        full_name=f"{p.first} {p.last}",
                        first_name=p.first,
                        last_name=p.last,
                        title="Engineer",
                        company=f"Co{p.i // 20}",
                        domain=p.domain,
                        emails=[NewEmail(p.email, p.status, 90, now)] if p.email and p.status else [],
                        phones=[NewPhone(p.mobile, PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")] if p.mobile else [],
                    ),
                )  # fmt: skip
                for p in batch
            ]

        ids.extend(run_write(svc.engine, op))
    return ids


def services(db_url: str, server: HubSpotServer, **settings: object) -> Services:
    st = Settings(
        _env_file=None, database_url=db_url, development=True, secret_keys=SecretStr(generate_key()),
        hubspot_api_url=server.url, crm_cursor_overlap_s=0, **settings,
    )  # fmt: skip
    return Services.from_settings(st)


def crm_contact(p: Person, *, with_email: bool) -> dict[str, str]:
    props = dict(firstname=p.first, lastname=p.last, company=f"Co{p.i // 20}", website=f"https://www.{p.domain}/")
    if with_email and p.email:
        props["email"] = p.email
    return {**props, **PRIVATE_MARKERS}


def build(db_url: str, server: HubSpotServer, n: int, *, team: str = "acme", existing: int = 0,
          strangers: int = 0, svc: Services | None = None, start: int = 0, **settings: object) -> CrmWorld:  # fmt: skip
    """`n` shared people in the CRM, the first `existing` of them already the team's contacts, plus
    `strangers` people nobody shares (they are contributed, and stay private)."""
    svc = svc or services(db_url, server, **settings)
    world = people(n, start)
    pids = seed(svc, world)
    svc.accounts.create_team(team, plan="basic")
    admin = svc.accounts.add_member(team, f"admin@{team}.test", role=Role.ADMIN)
    if existing:
        svc.team_contacts.save(admin, pids[:existing], ContactSource.SLACK)
    crm_ids = {k: server.add(**crm_contact(p, with_email=p.i % 3 == 0)) for k, p in enumerate(world)}
    for i in range(strangers):
        server.add(firstname=f"Strange{i}", lastname=f"Person{i}", company="Globex", website="globex.example",
                   email=f"strange{i}@globex.example", jobtitle="Buyer", **PRIVATE_MARKERS)  # fmt: skip
    return CrmWorld(svc, server, team, world, pids, crm_ids)
