"""The REST API under test: the real app (in-process client, or served on loopback), on SQLite and
PostgreSQL, with two teams each holding a key."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.services import Services
from core.settings import Settings
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus, Role
from storage.timeutil import utcnow
from web.app import create_app


@dataclass
class ApiWorld:
    services: Services
    team_id: int
    other_team_id: int
    key: str  # rep@acme.test's
    other_key: str  # spy@other.test's (another team)
    jane: int  # verified email, office phone and a mobile
    ravi: int  # accept-all email, no mobile
    nobody: int  # nothing on file

    def client(self):
        return create_app(self.services).test_client()


def seed_people(services: Services) -> dict[str, int]:
    now = utcnow()
    return {
        "jane": add_person(
            services.engine,
            NewPerson(
                full_name="Jane Doe",
                first_name="Jane",
                last_name="Doe",
                title="VP Sales",
                company="Acme Corp",
                domain="acmecorp.test",
                location="Austin, TX, US",
                linkedin_url="https://www.linkedin.com/in/janedoe",
                emails=[NewEmail("jane.doe@acmecorp.test", EmailStatus.VERIFIED, 96, now)],
                phones=[
                    NewPhone("+15125550147", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line"),
                    NewPhone("+15125550199", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile"),
                ],
            ),
        ),
        "ravi": add_person(
            services.engine,
            NewPerson(
                full_name="Ravi Patel",
                title="Head of Growth",
                company="Globex",
                domain="globex.test",
                emails=[NewEmail("ravi@globex.test", EmailStatus.ACCEPT_ALL, 55, now)],
            ),
        ),
        "nobody": add_person(services.engine, NewPerson(full_name="No Body", company="Nowhere")),
    }


def make_world(db_url: str, **settings) -> ApiWorld:
    scratch = tempfile.mkdtemp(prefix="tributary-api-")  # the job queue and job files, never ./var
    settings.setdefault("huey_sqlite_path", os.path.join(scratch, "huey.db"))
    settings.setdefault("api_job_dir", os.path.join(scratch, "jobs"))
    # Nothing here may reach the real internet: verification defaults to a closed loopback port.
    for name, value in (("verify_dns_nameservers", ["127.0.0.1"]), ("verify_dns_port", 9), ("verify_smtp_port", 9)):
        settings.setdefault(name, value)
    services = Services.from_settings(Settings(database_url=db_url, **settings))
    accounts = services.accounts
    team = accounts.create_team("acme", plan="free")  # 100 credits; email 1, mobile 8
    accounts.add_member("acme", "admin@acme.test", role=Role.ADMIN)
    accounts.add_member("acme", "rep@acme.test")
    other = accounts.create_team("other", plan="free")
    accounts.add_member("other", "spy@other.test")
    people = seed_people(services)
    _, key = services.api.keys.create("acme", "rep@acme.test", "tests")
    _, other_key = services.api.keys.create("other", "spy@other.test", "tests")
    return ApiWorld(services, team.id, other.id, key, other_key, people["jane"], people["ravi"], people["nobody"])


@pytest.fixture
def world(db_url: str) -> Iterator[ApiWorld]:
    w = make_world(db_url)
    yield w
    w.services.engine.dispose()


def serve(services: Services) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def app_url(world: ApiWorld) -> Iterator[str]:
    yield from serve(world.services)


def mail_settings(net) -> dict:
    """Email verification pointed at the loopback mail internet (tests/mailnet), never the real one."""
    return dict(
        verify_dns_nameservers=["127.0.0.1"],
        verify_dns_port=net.dns_port,
        verify_smtp_port=net.smtp_port,
        verify_test_domains=True,
        verify_connect_timeout_s=1.0,
        verify_command_timeout_s=2.0,
        verify_helo_name="verifier.tributary.test",
        verify_mail_from="probe@verifier.tributary.test",
    )
