"""The HubSpot client against the loopback server: paging past HubSpot's 10,000-result search window,
batch limits, 429 with Retry-After (waited out, counted), 401 as a clear error, and its own pacing."""

from __future__ import annotations

import pytest

from core.crm.connector import ContactUpdate, CrmAuthError, CrmError
from core.crm.hubspot import HubSpotContacts, SlidingWindow
from core.errors import InvalidInput
from tests.crm.hubspot_server import HubSpotServer

TOKEN = "pat-test"


def _client(server: HubSpotServer, **kw) -> HubSpotContacts:
    return HubSpotContacts(server.url, TOKEN, **kw)


def test_walks_every_contact_past_the_search_window() -> None:
    with HubSpotServer(TOKEN) as server:
        ids = [server.add(firstname=f"F{i}", lastname="L", email=f"f{i}@x.example") for i in range(10_450)]
        client = _client(server)
        seen: list[str] = []
        for page in client.changed_since(0, ["email"]):
            seen.extend(c.id for c in page.contacts)
        assert sorted(seen) == sorted(ids)  # each exactly once, past HubSpot's 10,000-result window
        assert client.calls == server.count("/search") == 53  # 200 a page, the last of each read again
        since = server.modified[ids[-10]]
        tail = [c.id for page in client.changed_since(since, ["email"]) for c in page.contacts]
        assert tail == ids[-10:]


def test_contacts_changing_during_the_walk_are_not_skipped() -> None:
    with HubSpotServer(TOKEN) as server:
        ids = [server.add(firstname=f"F{i}") for i in range(1000)]
        seen: list[str] = []
        for page in _client(server).changed_since(0, ["firstname"]):
            seen.extend(c.id for c in page.contacts)
            for c in page.contacts[:50]:
                server.edit(c.id, jobtitle="x")  # moves it behind everything not read yet
        assert set(ids) <= set(seen)


def test_more_than_a_page_at_one_millisecond_is_walked_by_id() -> None:
    with HubSpotServer(TOKEN) as server:
        ids = [server.add(firstname=f"F{i}") for i in range(450)]
        server.stamp(ids[:430], server.modified[ids[0]])  # an import: 430 contacts at one millisecond
        client = _client(server)
        seen = [c.id for page in client.changed_since(0, ["firstname"], page_size=100) for c in page.contacts]
        assert len(seen) == len(set(seen)) and set(seen) == set(ids)  # each once, none stuck behind the tie
        # 2 by last-modified (the second all seen), 5 through the tie by id, 1 after it
        assert client.calls == server.count("/search") == 8


def test_batch_limits_and_writes() -> None:
    with HubSpotServer(TOKEN) as server:
        ids = [server.add(firstname=f"F{i}") for i in range(101)]
        client = _client(server)
        with pytest.raises(InvalidInput, match="at most 100"):
            client.read(ids, ["firstname"])
        assert client.calls == 0  # refused before a request
        client.ensure_properties([])
        done = client.update([ContactUpdate(ids[0], {"jobtitle": "CTO"})])
        assert server.contacts[ids[0]]["jobtitle"] == "CTO" and done[0].modified_ms == server.modified[ids[0]]
        with pytest.raises(CrmError, match="400"):
            client.update([ContactUpdate(ids[0], {"no_such_property": "x"})])


def test_429_is_retried_after_retry_after_and_401_is_clear() -> None:
    waits: list[float] = []
    with HubSpotServer(TOKEN, rate_limit=3, window_s=0.3) as server:
        server.add(firstname="A")
        # The client's own pacing is looser than the server's limit, so the server answers 429.
        client = _client(server, requests_per_10s=1000, sleep=lambda s: waits.append(s))
        for _ in range(4):
            client.read([next(iter(server.contacts))], ["firstname"])
        assert 1.0 in waits  # Retry-After: 1 (whole seconds) honoured
        assert client.calls > server.count("/batch/read")  # the refused attempt is counted too
    with HubSpotServer(TOKEN) as server, pytest.raises(CrmAuthError, match="401"):
        HubSpotContacts(server.url, "bad").read(["1"], ["email"])


def test_sliding_window_paces_to_the_limit() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    window = SlidingWindow(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        window.acquire()
    assert slept == [10.0, 10.0]  # requests 4 and 7 each wait for the oldest to leave the window


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InvalidInput, match="https"):
        HubSpotContacts("http://api.hubapi.com", TOKEN)
