"""The Sheets add-on's backend under test: the real app on SQLite or PostgreSQL, Google's certificates
endpoint and (when given) the Sheets API on loopback, a team whose members sign in with ID tokens
minted by the tests' key."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field

from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.secrets import generate_key
from core.services import Services
from core.settings import Settings
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus, Role
from storage.timeutil import utcnow
from tests.google.identity import TEST_CLIENT_ID, GoogleCertsServer
from web.app import create_app

DOMAIN = "initech.test"


@dataclass
class SheetsWorld:
    services: Services
    certs: GoogleCertsServer
    team_id: int
    people: list[int] = field(default_factory=list)

    def client(self):
        return create_app(self.services).test_client()

    def headers(self, email: str = "rep@acme.test", **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.certs.mint_id_token(email, **claims)}"}

    def balance(self) -> int:
        return self.services.accounts.ledger.balance(self.team_id).available_credits


def make_world(
    db_url: str, certs: GoogleCertsServer, *, sheets_url: str = "http://127.0.0.1:9", **settings
) -> SheetsWorld:
    scratch = tempfile.mkdtemp(prefix="tributary-sheets-")
    settings.setdefault("huey_sqlite_path", os.path.join(scratch, "huey.db"))
    settings.setdefault("huey_name", f"tributary-sheets-{uuid.uuid4().hex[:10]}")
    for name, value in (("verify_dns_nameservers", ["127.0.0.1"]), ("verify_dns_port", 9), ("verify_smtp_port", 9)):
        settings.setdefault(name, value)
    services = Services.from_settings(Settings(
        _env_file=None, database_url=db_url, secret_keys=generate_key(), google_client_ids=TEST_CLIENT_ID,
        google_certs_url=certs.certs_url, sheets_api_url=sheets_url, **settings,
    ))
    accounts = services.accounts
    team = accounts.create_team("acme", plan="free")  # 100 credits; email 1, mobile 8
    accounts.add_member("acme", "admin@acme.test", role=Role.ADMIN)
    accounts.add_member("acme", "rep@acme.test")
    accounts.add_member("acme", "second@acme.test")
    accounts.create_team("other", plan="free")
    accounts.add_member("other", "spy@other.test")
    return SheetsWorld(services, certs, team.id)


def seed_people(services: Services, n: int) -> list[int]:
    """n people at Initech: even ones with a verified email, every third with a mobile."""
    now = utcnow()
    ids = []
    for i in range(n):
        emails = [NewEmail(f"pat{i}.lee@{DOMAIN}", EmailStatus.VERIFIED, 90, now)] if i % 2 == 0 else []
        mobile = NewPhone(f"+1415555{1000 + i:04d}", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")
        phones = [mobile] if i % 3 == 0 else []
        ids.append(add_person(services.engine, NewPerson(
            full_name=f"Pat{i} Lee", first_name=f"Pat{i}", last_name="Lee", title="Engineer", company="Initech",
            domain=DOMAIN, linkedin_url=f"https://www.linkedin.com/in/pat{i}-lee", emails=emails, phones=phones,
        )))
    return ids
