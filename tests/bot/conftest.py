"""The bot under test: the real Flask app served on loopback, Slack's Web API on loopback too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from werkzeug.serving import make_server

from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.services import Services
from core.settings import Settings
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus, Role
from storage.timeutil import utcnow
from tests.slackapi.server import SlackApiServer
from tests.slackapi.signing import SlackSender
from web.app import create_app

SECRET = "e0b2f4c1d6a84c5f9b7e3a2d1c0f9e8d"
SLACK_USERS = {
    "UADMIN": "admin@acme.test",
    "UREP": "rep@acme.test",
    "UREP2": "rep2@acme.test",
    "UOUT": "outsider@elsewhere.test",
    "UPOOR": "rep@poor.test",
}


@dataclass
class World:
    services: Services
    slack: SlackApiServer
    team_id: int
    poor_team_id: int
    jane: int  # verified email, office phone and a mobile
    ravi: int  # accept-all email, no mobile
    nobody: int  # nothing on file


SECRET_KEYS = "_8dPcUCu06x-ZhnSo-DbDWNOTLRqLtuKh_nPjm033mc="  # a Fernet key for tokens at rest


def make_settings(db_url: str, slack: SlackApiServer, **overrides) -> Settings:
    values = dict(
        database_url=db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        slack_client_id=None,
        slack_client_secret=None,
        secret_keys=SecretStr(SECRET_KEYS),
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def slack_api() -> Iterator[SlackApiServer]:
    with SlackApiServer(team_id="T1") as server:
        server.emails.update(SLACK_USERS)
        yield server


def seed(services: Services) -> tuple[int, int, dict[str, int]]:
    accounts = services.accounts
    team = accounts.create_team("acme", plan="free")  # 100 credits; email 1, mobile 8
    accounts.add_member("acme", "admin@acme.test", role=Role.ADMIN)
    accounts.add_member("acme", "rep@acme.test")
    accounts.add_member("acme", "rep2@acme.test")
    accounts.create_plan("empty", monthly_credits=0)
    poor = accounts.create_team("poor", plan="empty")
    accounts.add_member("poor", "rep@poor.test")
    now = utcnow()
    people = {
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
    services.identities.connect("T1", "acme")
    services.identities.connect("TPOOR", "poor")
    services.identities.link(poor.id, "rep@poor.test", "UPOOR")
    return team.id, poor.id, people


@pytest.fixture
def world(db_url: str, slack_api: SlackApiServer) -> Iterator[World]:
    services = Services.from_settings(make_settings(db_url, slack_api))
    team_id, poor_id, people = seed(services)
    yield World(services, slack_api, team_id, poor_id, people["jane"], people["ravi"], people["nobody"])
    services.engine.dispose()


@pytest.fixture
def app_url(world: World) -> Iterator[str]:
    yield from serve(world.services)


def serve(services: Services) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def sender(app_url: str) -> SlackSender:
    return SlackSender(f"{app_url}/slack/events", SECRET)
