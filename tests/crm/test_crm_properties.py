"""Properties of the CRM sync, on SQLite and PostgreSQL (hypothesis):
- money: whatever the cap and whatever the team accessed before, the wallet drops by exactly what the
  sync reports, never by more than the cap, and a repeat sync charges nothing for the same data;
- privacy: for any mix of teams (some opted out) syncing CRMs that share some people, no shared row
  names a team, no non-business CRM column reaches any table, and what only an opted-out team
  supplied never reaches a shared table.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage.models import (
    Company,
    CompanyNameKey,
    ContributionObservation,
    EmailAddress,
    Person,
    PersonNameKey,
    Phone,
)
from storage.models.enums import DataKind, Role
from tests.crm import world as cw
from tests.crm.hubspot_server import HubSpotServer

SHARED_TABLES = (Person, Company, EmailAddress, Phone, ContributionObservation, PersonNameKey, CompanyNameKey)
_run = itertools.count()
PROPERTY = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(
    cap=st.integers(min_value=0, max_value=40),
    accessed=st.sets(st.integers(min_value=0, max_value=11), max_size=6),
    mobile_mapped=st.booleans(),
)
def test_the_wallet_drops_by_what_the_sync_reports_never_above_the_cap(db_url, cap, accessed, mobile_mapped) -> None:
    k = next(_run)
    with HubSpotServer(cw.TOKEN) as server:
        world = cw.build(db_url, server, 12, team=f"money{k}", start=10_000 * (k + 1))
        svc = world.svc
        admin = svc.accounts.members(world.team)[0]
        for i in sorted(accessed):
            svc.data_requests.access(world.team, admin.id, world.person_ids[i], DataKind.EMAIL)
        svc.crm.connect(world.team, "hubspot", cw.TOKEN)
        if not mobile_mapped:
            svc.crm.set_fields(world.team, {"mobile": "-"})
        team = svc.accounts.team(world.team)
        before = svc.ledger.balance(team.id).available_credits
        preview = svc.crm.sync(world.team, dry_run=True, max_credits=cap)
        assert svc.ledger.balance(team.id).available_credits == before
        done = svc.crm.sync(world.team, max_credits=cap)
        after = svc.ledger.balance(team.id).available_credits
        assert before - after == done.credits_charged <= min(cap, preview.max_credits)
        again = svc.crm.sync(world.team, max_credits=cap)
        assert svc.ledger.balance(team.id).available_credits == after - again.credits_charged
        assert again.credits_charged <= cap


@PROPERTY
@given(
    teams=st.lists(st.booleans(), min_size=2, max_size=3),  # contribute?
    own=st.integers(min_value=1, max_value=4),
    common=st.integers(min_value=0, max_value=3),
)
def test_no_shared_row_names_a_team_or_holds_private_data(db_url, teams, own, common) -> None:
    k = next(_run)
    with HubSpotServer(cw.TOKEN) as server:
        svc = cw.services(db_url, server)
        names = []
        for t, contribute in enumerate(teams):
            # Each team its own HubSpot account (the token is the account), sharing some people.
            server.token = f"tok-{k}-{t}"
            name = f"zzteam{k}x{t}"
            names.append(name)
            svc.accounts.create_team(name, plan="basic")
            svc.accounts.set_contribute(name, contribute)
            svc.accounts.add_member(name, f"admin@{name}.test", role=Role.ADMIN)
            for i in range(own):
                server.add(
                    firstname=f"Own{k}x{t}x{i}", lastname="Solo", company=name, website=f"{name}.example",
                    email=f"own{i}@{name}.example", jobtitle=f"Title of {name}", **cw.PRIVATE_MARKERS,
                )  # fmt: skip
            for i in range(common):
                server.add(
                    firstname=f"Common{k}", lastname=f"Person{i}", company=f"Shared{k}",
                    website=f"shared{k}.example", email=f"c{i}@shared{k}.example", **cw.PRIVATE_MARKERS,
                )  # fmt: skip
            svc.crm.connect(name, "hubspot", server.token)
            svc.crm.sync(name)
            server.contacts.clear()
        with svc.engine.connect() as conn:
            shared = " ".join(
                str(v) for model in SHARED_TABLES for row in conn.execute(select(model.__table__)) for v in row
            ).lower()
            everything = _all_text(conn)
    for name in names:
        assert name not in shared  # neither as a company nor a domain, email, title, or anything else
        assert f"own0@{name}.example" not in shared  # one team's word alone is never shared
    if common and sum(teams) < 2:
        # People several teams have, but fewer than two that contribute: an opted-out team's copy
        # never counts as the second source.
        assert f"c0@shared{k}.example" not in shared
    for marker in cw.PRIVATE_MARKERS.values():
        assert marker not in everything  # not even in the team's private tables


def _all_text(conn) -> str:
    from sqlmodel import SQLModel

    return " ".join(
        str(v) for table in SQLModel.metadata.sorted_tables for row in conn.execute(select(table)) for v in row
    ).lower()
