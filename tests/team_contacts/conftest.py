"""A small world for team contacts: two teams, an admin and two reps, people with varied statuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import Accounts, MemberInfo
from core.ledger import Ledger
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.team_contacts.export import ContactExports
from core.team_contacts.lists import ContactLists
from core.team_contacts.service import TeamContacts
from storage.models.enums import ContactSource, EmailStatus, PhoneKind, PhoneStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class World:
    engine: Engine
    accounts: Accounts
    ledger: Ledger
    contacts: TeamContacts
    lists: ContactLists
    exports: ContactExports
    admin: MemberInfo
    rep: MemberInfo
    rep2: MemberInfo
    spy: MemberInfo  # the other team's
    people: dict[str, int]
    contact_ids: dict[str, int]


def _person(engine, name, company="Initech", domain="initech.test", emails=(), phones=()) -> int:
    return add_person(
        engine,
        NewPerson(full_name=name, company=company, domain=domain, emails=list(emails), phones=list(phones)),
    )


@pytest.fixture
def world(engine: Engine) -> World:
    accounts = Accounts(engine)
    accounts.create_plan("exporter", monthly_credits=100, price_export_credits=2)
    accounts.create_team("acme", plan="exporter")
    admin = accounts.add_member("acme", "boss@acme.test", role="admin")
    rep = accounts.add_member("acme", "rep@acme.test")
    rep2 = accounts.add_member("acme", "rep2@acme.test")
    accounts.create_team("other", plan="free")
    spy = accounts.add_member("other", "spy@other.test")
    people = {
        "vera": _person(engine, "Vera Fied", emails=[NewEmail("vera@initech.test", EmailStatus.VERIFIED, 97, T0)],
                        phones=[NewPhone("+14155550100", PhoneKind.OFFICE, PhoneStatus.VALID, "fixed_line")]),
        "cat": _person(engine, "Cat Chall", emails=[NewEmail("cat@initech.test", EmailStatus.ACCEPT_ALL, 60, T0)]),
        "mo": _person(engine, "Mo Bile", company="Globex", domain="globex.test",
                      phones=[NewPhone("+447700900123", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")]),
        "lee": _person(engine, "Lee Kely", company="Globex", domain="globex.test",
                       emails=[NewEmail("lee@globex.test", EmailStatus.LIKELY_TO_ENGAGE, 99, T0)]),
        "nobody": _person(engine, "No Body", company="Umbrella", domain="umbrella.test"),
        "bad": _person(engine, "=HYPERLINK(\"x\")", company="Initech", domain="initech.test",
                       emails=[NewEmail("bad@initech.test", EmailStatus.INVALID, 0, T0)],
                       phones=[NewPhone("+14155550199", PhoneKind.MOBILE, PhoneStatus.INVALID, "mobile")]),
    }  # fmt: skip
    contacts = TeamContacts(engine, accounts)
    plan = [
        ("vera", rep, ContactSource.SLACK, 0),
        ("cat", rep, ContactSource.CSV, 1),
        ("mo", rep2, ContactSource.SHEETS, 2),
        ("lee", rep2, ContactSource.API, 3),
        ("nobody", admin, ContactSource.CRM, 4),
        ("bad", rep, ContactSource.SLACK, 5),
    ]
    for key, member, source, day in plan:
        contacts.save(member, [people[key]], source, now=T0 + timedelta(days=day))
    # The other team saved Vera too: a contact of its own, invisible to acme.
    contacts.save(spy, [people["vera"]], ContactSource.SLACK, now=T0)
    ids = {c.full_name: c.id for c in contacts.find(admin).contacts}
    by_key = {k: ids[name] for k, name in [
        ("vera", "Vera Fied"), ("cat", "Cat Chall"), ("mo", "Mo Bile"), ("lee", "Lee Kely"),
        ("nobody", "No Body"), ("bad", "=HYPERLINK(\"x\")")]}  # fmt: skip
    ledger = accounts.ledger
    lists = ContactLists(engine, contacts)
    exports = ContactExports(engine, contacts, accounts, ledger)
    return World(engine, accounts, ledger, contacts, lists, exports, admin, rep, rep2, spy, people, by_key)
