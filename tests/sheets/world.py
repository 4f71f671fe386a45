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
from tests.waterfall.vendor_server import Reply, VendorServer, hunter_found, hunter_not_found
from web.app import create_app

COMPANIES = 25  # people spread over companies, as in a real list (matching compares names within one)


def company_of(i: int) -> tuple[str, str]:
    """Person i's company and domain."""
    return f"Initech {i % COMPANIES}", f"initech{i % COMPANIES}.test"


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


def vendor_settings(vendor: VendorServer) -> dict:
    """A Hunter-shaped provider on loopback, for TRIBUTARY_PROVIDERS."""
    return {"providers": [{"name": "hunter", "base_url": vendor.base_url, "api_key": "key",
                           "rate_limit_per_s": 1000, "max_attempts": 2}]}


def vendor_knows_odd_people(vendor: VendorServer) -> None:
    """The vendor finds the people the database has no email for (odd ones): a vendor's email is a
    claim, not a verification, so it comes back free."""

    def answer(params: dict[str, str]) -> Reply:
        first = params.get("first_name", "")
        if first.startswith("Pat") and first[3:].isdigit() and int(first[3:]) % 2:
            return hunter_found(f"{first.lower()}.lee@{params.get('domain', '')}")
        return hunter_not_found()

    vendor.default = answer


def use_vendor(services: Services) -> None:
    services.waterfalls.set("acme", email_sources=["database", "hunter"], phone_sources=["database"],
                            validate_email=False)


def seed_people(services: Services, n: int) -> list[int]:
    """n people at Initech: even ones with a verified email, every third with a mobile."""
    now = utcnow()
    ids = []
    for i in range(n):
        company, domain = company_of(i)
        emails = [NewEmail(f"pat{i}.lee@{domain}", EmailStatus.VERIFIED, 90, now)] if i % 2 == 0 else []
        mobile = NewPhone(f"+1415555{1000 + i:04d}", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")
        phones = [mobile] if i % 3 == 0 else []
        ids.append(add_person(services.engine, NewPerson(
            full_name=f"Pat{i} Lee", first_name=f"Pat{i}", last_name="Lee", title="Engineer", company=company,
            domain=domain, linkedin_url=f"https://www.linkedin.com/in/pat{i}-lee", emails=emails, phones=phones,
        )))
    return ids
