"""CRM sync end to end against the loopback HubSpot, on SQLite and PostgreSQL: pull (dedupe against
the team's contacts), push (fill what is missing, never overwrite a person's edit), incremental
syncs that move only what changed (counted in API calls), credits only for accessed data."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core.crm.connector import CrmAuthError
from core.errors import InvalidInput
from storage.models import EmailAddress
from storage.models.enums import DataKind, EmailStatus
from tests.crm import world as cw
from tests.crm.hubspot_server import HubSpotServer


@pytest.fixture
def server():
    with HubSpotServer(cw.TOKEN) as s:
        yield s


def _connect(world: cw.CrmWorld, **kw) -> None:
    world.svc.crm.connect(world.team, "hubspot", cw.TOKEN, **kw)


def test_sync_links_dedupes_pushes_and_never_overwrites_a_person(db_url: str, server: HubSpotServer) -> None:
    world = cw.build(db_url, server, 40, existing=10, strangers=5)
    _connect(world)
    assert "tributary_job_change" in server.properties  # custom properties made on connect
    first = world.svc.crm.sync(world.team)
    assert first.pulled["read"] == 45 and first.pulled["linked"] == 40
    assert first.pulled["new_contacts"] == 30 and first.pulled["duplicates"] == 10
    assert first.pulled["contributed"] == 5
    assert first.credits_charged == 0  # cap 0: nothing bought
    # Title and company filled where the CRM had none; no email: the team never accessed one.
    c1 = server.contacts[world.ids[1]]
    assert c1["jobtitle"] == "Engineer" and c1["company"] == "Co0" and not c1.get("email")
    assert first.pushed["contacts_updated"] == 40

    # A person edits a title Tributary wrote; the team accesses person 0's email meanwhile.
    server.edit(world.ids[1], jobtitle="Chief Executive")
    admin = world.svc.accounts.members(world.team)[0]
    world.svc.data_requests.access(world.team, admin.id, world.person_ids[5], DataKind.EMAIL)
    second = world.svc.crm.sync(world.team)
    assert server.contacts[world.ids[1]]["jobtitle"] == "Chief Executive"
    assert second.pushed["kept_person_edits"] == 1
    assert server.contacts[world.ids[5]]["email"] == world.people[5].email  # the CRM had none: filled
    assert server.contacts[world.ids[5]]["tributary_email_status"] == "verified"

    # Nothing changed on either side: one search page, no reads or writes.
    server.calls.clear()
    third = world.svc.crm.sync(world.team)
    assert third.pushed["values_written"] == 0
    assert server.count("/batch/update") == 0 and server.count("/batch/read") == 0
    assert server.count("/search") == 1
    assert server.contacts[world.ids[1]]["jobtitle"] == "Chief Executive"

    # Three CRM-side edits: the next sync reads those (one page) and writes nothing over them.
    for i in (2, 3, 4):
        server.edit(world.ids[i], jobtitle=f"Edited {i}")
    server.calls.clear()
    fourth = world.svc.crm.sync(world.team)
    assert fourth.pulled["read"] - fourth.pulled["unchanged"] == 3
    assert server.count("/search") == 1 and server.count("/batch/update") == 0
    assert {server.contacts[world.ids[i]]["jobtitle"] for i in (2, 3, 4)} == {"Edited 2", "Edited 3", "Edited 4"}


def test_credits_only_for_accessed_data_within_the_cap(db_url: str, server: HubSpotServer) -> None:
    world = cw.build(db_url, server, 40)
    _connect(world)
    team = world.svc.accounts.team(world.team)
    before = world.svc.ledger.balance(team.id).available_credits
    dry = world.svc.crm.sync(world.team, dry_run=True, max_credits=10)
    assert dry.credits_charged == 0 and 0 < dry.max_credits <= 10
    assert world.svc.ledger.balance(team.id).available_credits == before
    assert not any(c.get("jobtitle") for c in server.contacts.values())  # a dry run writes nothing
    done = world.svc.crm.sync(world.team, max_credits=10)
    after = world.svc.ledger.balance(team.id).available_credits
    assert before - after == done.credits_charged <= 10
    assert done.credits_charged > 0
    filled = [k for k, p in enumerate(world.people) if p.i % 3 and server.contacts[world.ids[k]].get("email")]
    assert done.credits_charged <= len(filled) + 8 * done.requests  # emails 1 credit, mobiles 8
    # Again with a cap: everything bought is already the team's, so nothing more is charged.
    again = world.svc.crm.sync(world.team, max_credits=0)
    assert again.credits_charged == 0
    assert world.svc.ledger.balance(team.id).available_credits == after


def test_bad_token_is_a_clear_error(db_url: str, server: HubSpotServer) -> None:
    world = cw.build(db_url, server, 2)
    with pytest.raises(CrmAuthError, match="401"):
        world.svc.crm.connect(world.team, "hubspot", "wrong-token")
    with pytest.raises(InvalidInput, match="salesforce"):
        world.svc.crm.connect(world.team, "salesforce", cw.TOKEN)


def test_the_schedule_syncs_each_team_once_per_interval(db_url: str, server: HubSpotServer) -> None:
    world = cw.build(db_url, server, 3)
    _connect(world)
    assert world.svc.crm.sync_due() == [world.team]
    assert world.svc.crm.sync_due() == []  # synced within the interval: nothing to do
    later = world.svc.crm.status(world.team).last_sync_at + world.svc.crm.sync_interval
    server.token = "revoked"  # a failing team is logged and skipped, never raised
    assert world.svc.crm.sync_due(later) == []
    server.token = cw.TOKEN
    assert world.svc.crm.sync_due(later) == [world.team]


def test_a_job_change_reaches_the_crm(db_url: str, server: HubSpotServer) -> None:
    world = cw.build(db_url, server, 8)
    _connect(world)
    admin = world.svc.accounts.members(world.team)[0]
    world.svc.data_requests.access(world.team, admin.id, world.person_ids[1], DataKind.EMAIL)
    world.svc.crm.sync(world.team)
    contact = server.contacts[world.ids[1]]
    assert contact["tributary_email_status"] == "verified" and not contact.get("tributary_job_change")
    # Corroborated sources moved the person: their old work email is now update_required.
    with world.svc.engine.begin() as conn:
        conn.execute(
            update(EmailAddress.__table__)
            .where(EmailAddress.__table__.c.address == world.people[1].email)
            .values(status=EmailStatus.UPDATE_REQUIRED.value)
        )
    world.svc.crm.sync(world.team)
    assert contact["tributary_job_change"] == "true"
    assert contact["tributary_email_status"] == "update_required"
