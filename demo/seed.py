"""The demo `make run` starts with: team `demo` on `basic`, an admin, a rep, a few people — and the
large deterministic world of demo/world.py (2,000 companies, 50,000 people) around them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from core.accounts import Accounts
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from demo.world import DemoWorldSummary, seed_world
from storage.db import read_transaction
from storage.models import Person, Team
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus, Role
from storage.timeutil import utcnow

DEMO_TEAM = "demo"
DEMO_ADMIN = "admin@demo.test"
DEMO_REP = "rep@demo.test"


def is_empty(accounts: Accounts) -> bool:
    with read_transaction(accounts.engine) as conn:
        return conn.execute(select(func.count()).select_from(Team)).scalar_one() == 0


def seed_small(accounts: Accounts) -> bool:
    """Seed the demo team and a handful of people. Returns False if the team already exists."""
    engine = accounts.engine
    if any(t.name == DEMO_TEAM for t in accounts.teams()):
        return False
    accounts.create_team(DEMO_TEAM, plan="basic")
    accounts.add_member(DEMO_TEAM, DEMO_ADMIN, role=Role.ADMIN)
    accounts.add_member(DEMO_TEAM, DEMO_REP)
    with read_transaction(engine) as conn:
        have_people = conn.execute(select(func.count()).select_from(Person)).scalar_one() > 0
    if have_people:
        return True
    now = utcnow()
    for person in (
        NewPerson(
            full_name="Jane Doe",
            first_name="Jane",
            last_name="Doe",
            title="VP Sales",
            company="Acme",
            domain="acme.test",
            linkedin_url="https://www.linkedin.com/in/janedoe",
            location="Austin, TX, US",
            emails=[NewEmail("jane.doe@acme.test", EmailStatus.VERIFIED, 96, now)],
            phones=[
                NewPhone("+15125550147", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line"),
                NewPhone("+15125550199", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile"),
            ],
        ),
        NewPerson(
            full_name="Ravi Patel",
            first_name="Ravi",
            last_name="Patel",
            title="Head of Growth",
            company="Globex",
            domain="globex.test",
            location="London, GB",
            emails=[NewEmail("ravi@globex.test", EmailStatus.ACCEPT_ALL, 55, now)],
        ),
        NewPerson(
            full_name="Ana Lima",
            first_name="Ana",
            last_name="Lima",
            title="CTO",
            company="Initech",
            domain="initech.test",
            location="Lisbon, PT",
            emails=[NewEmail("ana.lima@initech.test", EmailStatus.VERIFIED, 91, now - timedelta(days=3))],
            phones=[NewPhone("+351912345678", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")],
        ),
    ):
        add_person(engine, person)
    return True


def seed(
    accounts: Accounts, *, world: bool = True, on_progress: Callable[[str, int, int], None] | None = None
) -> tuple[bool, DemoWorldSummary | None]:
    """The small demo team first (its people only go in an empty database), then the large world."""
    created = seed_small(accounts)
    return created, seed_world(accounts.engine, on_progress=on_progress) if world else None
