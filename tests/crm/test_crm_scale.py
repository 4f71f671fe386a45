"""The issue's proof at size: a CRM of 5,000 contacts (1,000 on PostgreSQL, where the same run takes
over two minutes on this shared machine), a fifth of them people the team already has, synced both
ways; later syncs move only what changed (counted in API calls)."""

from __future__ import annotations

import math

import pytest

from storage.models.enums import DataKind
from tests.crm import world as cw
from tests.crm.hubspot_server import HubSpotServer

sizeS = {"sqlite": 5_000, "postgresql": 1_000}


@pytest.mark.slow
def test_5000_contacts_both_ways_then_only_what_changed(db_url: str, backend: str) -> None:
    size = sizeS[backend]
    existing = size // 5
    with HubSpotServer(cw.TOKEN) as server:
        world = cw.build(db_url, server, size, existing=existing, hubspot_requests_per_10s=100_000)
        world.svc.crm.connect(world.team, "hubspot", cw.TOKEN)
        server.calls.clear()
        first = world.svc.crm.sync(world.team)
        assert first.pulled["linked"] == size
        assert first.pulled["duplicates"] == existing and first.pulled["new_contacts"] == size - existing
        # Each contact, then the echo of our write to it (pushed page by page, read back at the end).
        assert server.count("/search") <= math.ceil(2 * size / 199) + 1
        assert server.count("/batch/update") == server.count("/batch/read") == size // 100
        assert all(c.get("jobtitle") == "Engineer" for c in server.contacts.values())
        in_crm = sum(1 for p in world.people if p.i % 3 == 0 and p.email)
        assert sum(bool(c.get("email")) for c in server.contacts.values()) == in_crm  # none bought (cap 0)

        # Nothing changed: the next sync is one search (re-reading the newest contact) and nothing else.
        server.calls.clear()
        settle = world.svc.crm.sync(world.team)
        assert settle.pulled["unchanged"] == settle.pulled["read"] == 1 and settle.pushed["values_written"] == 0
        assert len(server.calls) == 1

        # 1 % edited in the CRM, and 20 emails accessed by the team: only those move.
        edited = list(world.ids.values())[:50]
        for cid in edited:
            server.edit(cid, jobtitle="Edited in HubSpot")
        admin = world.svc.accounts.members(world.team)[0]
        # People whose CRM contact has no email and who have a verified one on file.
        buy = [k for k, p in enumerate(world.people) if k >= 100 and p.i % 3 and p.status == "verified"][:20]
        for k in buy:
            world.svc.data_requests.access(world.team, admin.id, world.person_ids[k], DataKind.EMAIL)
        server.calls.clear()
        third = world.svc.crm.sync(world.team)
        assert third.pulled["read"] - third.pulled["unchanged"] == 50
        assert third.pushed["kept_person_edits"] == 50
        assert server.count("/search") == 1
        assert server.count("/batch/read") == server.count("/batch/update") == 1
        assert third.pushed["contacts_updated"] == 20
        assert all(server.contacts[cid]["jobtitle"] == "Edited in HubSpot" for cid in edited)
