"""The add-on's backend end to end on SQLite and PostgreSQL: the real app answering the sidebar's
calls (ID tokens from the loopback certificates endpoint), the Sheets API on loopback, jobs run by a
real huey consumer, results written back by the worker task. Each run checks that no input cell
changed, every output sits on its own person's row, and the credits the status column reports are
exactly what the job charged and what the ledger lost."""

from __future__ import annotations

import threading
import time

import pytest

from core.sheets.store import Settled
from core.sheets.writer import REFUSED_TOKEN_MESSAGE, SHEET_GONE
from tests.google.fixtures import google_certs, sheets_server  # noqa: F401  (fixtures)
from tests.sheets.flow import (
    HEADER,
    WIDTH,
    Sidebar,
    check_outputs_on_their_rows,
    expected_credits,
    messy_rows,
    status_credits,
    workers,
)
from tests.sheets.world import make_world, seed_people, use_vendor, vendor_knows_odd_people, vendor_settings
from tests.waterfall.vendor_server import VendorServer

PEOPLE = 12
ROWS = 60  # data rows; header on row 1
LAST = ROWS + 1
EXPECTED = expected_credits(messy_rows(PEOPLE, ROWS))
TYPED = frozenset({"my own number"})


@pytest.fixture
def vendor():
    with VendorServer() as server:
        vendor_knows_odd_people(server)
        yield server


@pytest.fixture
def world(db_url, google_certs, sheets_server, vendor):  # noqa: F811
    w = make_world(db_url, google_certs, sheets_url=sheets_server.base_url, enrich_chunk_rows=8,
                   **vendor_settings(vendor))
    w.people = seed_people(w.services, PEOPLE)
    use_vendor(w.services)
    with workers(w):
        yield w
    w.services.engine.dispose()


@pytest.fixture
def sheet(sheets_server):  # noqa: F811
    handle = sheets_server.create_sheet([HEADER, *messy_rows(PEOPLE, ROWS)], title="Leads 2026")
    handle.set_cell("F2", "3", formula="=1+2")
    return handle


def _contacts(world) -> set[tuple[int, str]]:
    from sqlalchemy import select

    from storage.models import TeamContact

    with world.services.engine.connect() as conn:
        return {(r.person_id, r.source) for r in conn.execute(select(TeamContact.person_id, TeamContact.source))}


def _candidate_companies(world) -> set[str]:
    from sqlalchemy import select

    from storage.models import ContactCandidate

    with world.services.engine.connect() as conn:
        return {str(c).lower() for c in conn.execute(select(ContactCandidate.company)).scalars()}


def _credits_of_unwritten(world, job_id: int) -> int:
    return sum(r.credits_shown for r in world.services.sheets.store.rows(job_id) if r.written_row is None)


def test_a_messy_sheet_is_enriched_in_place(world, sheets_server, sheet, vendor) -> None:  # noqa: F811
    bar = Sidebar(world, sheets_server, sheet)
    before = sheet.values(f"A1:F{LAST}")
    sheet.set_cell("H2", "my own number")  # a cell the user typed into, in the mobile output column
    selection = bar.post("/selection", {"sheet": bar.ref(f"A1:F{LAST}"), "oauth_token": bar.token})
    assert selection["header_row"] == 1 and selection["first_data_row"] == 2 and selection["rows"] == ROWS
    assert [c["field"] for c in selection["columns"]] == ["first_name", "last_name", "company", "domain", "email", None]
    assert {k: v["letter"] for k, v in selection["outputs"].items()} == {"email": "G", "mobile": "H", "status": "I"}
    assert selection["outputs"]["email"]["header"] == "tributary_email"

    preview = bar.post("/preview", bar.job_body(f"A1:F{LAST}"))
    assert preview["rows"] == ROWS and preview["rows_without_identifier"] == 12  # 6 blank, 6 name-only
    assert preview["max_credits"] == PEOPLE * (1 + 8) and preview["balance_credits"] == 100
    assert preview["affordable"] is False and preview["free_rows"] == 0

    balance = world.balance()
    started = bar.start(f"A1:F{LAST}")
    assert started["status"] in ("queued", "running") and started["rows_total"] == ROWS
    done = bar.until(started["job_id"])
    assert done["status"] == "done", done
    assert done["percent"] == 100 and done["rows_done"] == ROWS
    assert sheet.values(f"A1:F{LAST}") == before  # no input cell changed
    assert sheet.formula("F2") == "=1+2"
    assert sheet.cell("H2") == "my own number"
    assert [sheet.cell(a) for a in ("G1", "H1", "I1")] == ["tributary_email", "tributary_mobile", "tributary_status"]
    statuses = check_outputs_on_their_rows(sheet, LAST, selection["outputs"], TYPED)
    drop = balance - world.balance()
    # 6 verified emails (1 credit) and 4 mobiles (8 credits), each person paid once whatever the duplicates.
    assert drop == done["credits_spent"] == status_credits(statuses) == EXPECTED
    summary = done["summary"]
    assert summary["skipped"] == 12 and summary["kept"] == 1 and summary["changed"] == 0
    assert summary["found"] + summary["free"] + summary["not_found"] + summary["skipped"] == ROWS
    assert statuses.count("") == 6  # blank rows stay blank
    assert "skipped: no identifier" in statuses and "not found" in statuses and "free: already accessed" in statuses
    assert "found · free (not chargeable)" in statuses and vendor.calls > 0  # the waterfall's vendor found those
    assert world.services.sheets.store.token(started["job_id"]) is None  # the token is gone with the job
    # A sheet is an upload: every person its rows matched is now the member's contact (source sheets),
    # charged or not (the odd people had nothing chargeable), and rows nobody matched are contributed
    # as the team's private candidates (shared only once corroborated).
    assert _contacts(world) == {(pid, "sheets") for pid in world.people}
    assert "ünïcode gmbh" in _candidate_companies(world)

    again = bar.until(bar.start(f"A1:F{LAST}")["job_id"])  # everything already paid: free, and no cell re-written
    assert again["status"] == "done" and again["credits_spent"] == 0 and world.balance() == balance - drop
    assert check_outputs_on_their_rows(sheet, LAST, selection["outputs"], TYPED) == statuses


def test_a_sort_and_a_row_deletion_while_the_job_writes(world, sheets_server, sheet) -> None:  # noqa: F811
    world.services.sheets.writer.min_rows = 10  # write in several passes
    bar = Sidebar(world, sheets_server, sheet)
    before = {tuple(r) for r in sheet.values(f"A2:F{LAST}")}
    balance = world.balance()
    changed = []

    def shuffle(call) -> None:
        if call.kind == "write" and call.status == 200 and not changed and "values:batchUpdate" in call.path:
            changed.append(True)
            sheet.sort_rows("A", reverse=True)
            sheet.delete_rows(5)  # whoever is on row 5 now: its result has no row any more

    sheets_server.on_call(shuffle)
    done = bar.until(bar.start(f"A1:F{LAST}")["job_id"])
    assert changed and done["status"] == "done", done
    rows_now = {tuple(r) for r in sheet.values(f"A2:F{LAST - 1}")}
    assert rows_now <= before and len(before - rows_now) <= 1  # only the deleted row is missing
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    drop = balance - world.balance()
    assert drop == done["credits_spent"] == status_credits(statuses) + _credits_of_unwritten(world, done["job_id"])
    assert len(sheets_server.writes()) >= 2


def _expire_after_the_first_write(sheets_server, bar: Sidebar) -> None:  # noqa: F811
    """Google stops accepting the sidebar's token right after the job's first values write."""
    expired: list[str] = []

    def expire(call) -> None:
        if call.kind == "write" and call.status == 200 and not expired and "values:batchUpdate" in call.path:
            expired.append(bar.token)
            sheets_server.expire(bar.token)

    sheets_server.on_call(expire)


def test_a_token_that_expires_mid_job(world, sheets_server, sheet) -> None:  # noqa: F811
    world.services.sheets.writer.min_rows = 10
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    _expire_after_the_first_write(sheets_server, bar)
    job_id = bar.start(f"A1:F{LAST}")["job_id"]
    # The sidebar is closed (polls bring no token): a sidebar that kept sending the token Google just
    # refused would hand it back on every poll, and the job would flip between waiting and writing.
    waiting = bar.until(job_id, ("waiting_for_token", "done"), token=False)
    assert waiting["status"] == "waiting_for_token", waiting
    assert waiting["message"] == f"{waiting['rows_waiting']} rows ready to write — open the sidebar"
    spent = world.services.enrichment_jobs.job(job_id).progress.charged_credits
    bar.fresh_token()  # the sidebar is opened again: its next poll brings a fresh token
    done = bar.until(job_id)
    assert done["status"] == "done" and done["rows_waiting"] == 0
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    drop = balance - world.balance()
    assert drop == done["credits_spent"] == status_credits(statuses) == EXPECTED
    assert done["credits_spent"] >= spent  # nothing looked up or charged again
    assert any(c.status == 401 for c in sheets_server.calls)  # Google refused the expired token


def test_a_sidebar_that_keeps_sending_the_refused_token(world, sheets_server, sheet) -> None:  # noqa: F811
    """Google refuses the sidebar's token mid-job and the open sidebar keeps sending that same token:
    the job waits (told so) instead of waking on every poll to be refused again."""
    world.services.sheets.writer.min_rows = 10
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    _expire_after_the_first_write(sheets_server, bar)
    job_id = bar.start(f"A1:F{LAST}")["job_id"]
    waiting = bar.until(job_id, ("waiting_for_token", "done"))  # every poll sends the refused token
    assert waiting["status"] == "waiting_for_token", waiting
    assert waiting["message"] == REFUSED_TOKEN_MESSAGE.format(rows=waiting["rows_waiting"]), waiting
    world.services.sheets.writer.min_rows = 1  # any poll would now start a pass if the token were taken
    for _ in range(5):
        view = bar.poll(job_id)
        assert view["status"] == "waiting_for_token", view
        assert view["message"] == REFUSED_TOKEN_MESSAGE.format(rows=view["rows_waiting"]), view
    assert [c.status for c in sheets_server.calls].count(401) == 1  # refused once, never asked again
    bar.fresh_token()  # the member reopens the sidebar: a new token
    done = bar.until(job_id)
    assert done["status"] == "done" and done["rows_waiting"] == 0
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    drop = balance - world.balance()
    assert drop == done["credits_spent"] == status_credits(statuses) == EXPECTED


def test_two_members_enrich_the_same_sheet_at_once(world, sheets_server, sheet) -> None:  # noqa: F811
    rep = Sidebar(world, sheets_server, sheet)
    second = Sidebar(world, sheets_server, sheet, email="second@acme.test")
    balance = world.balance()
    first_id = rep.start(f"A1:F{LAST}")["job_id"]
    second_id = second.start(f"A1:F{LAST}")["job_id"]
    a, b = rep.until(first_id), second.until(second_id)
    assert a["status"] == b["status"] == "done"
    drop = balance - world.balance()
    assert drop == a["credits_spent"] + b["credits_spent"] == EXPECTED  # each person paid once for the team
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    assert status_credits(statuses) <= drop  # a cell the other job wrote first was kept, never overwritten


def test_the_sheet_deleted_mid_job(world, sheets_server, sheet) -> None:  # noqa: F811
    world.services.sheets.writer.min_rows = 10
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    gone = []

    def delete(call) -> None:
        if call.kind == "write" and call.status == 200 and not gone and "values:batchUpdate" in call.path:
            gone.append(True)
            sheet.delete()

    sheets_server.on_call(delete)
    job_id = bar.start(f"A1:F{LAST}")["job_id"]
    failed = bar.until(job_id)
    assert failed["status"] == "failed" and failed["message"] == SHEET_GONE
    assert world.services.sheets.store.token(job_id) is None
    assert balance - world.balance() == failed["credits_spent"]  # what was charged, once
    assert bar.poll(job_id)["status"] == "failed"  # a later poll changes nothing


def test_a_spend_cap_then_retry_of_the_rows_not_enriched(world, sheets_server, sheet) -> None:  # noqa: F811
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    capped = bar.until(bar.start(f"A1:F{LAST}", max_credits=10)["job_id"])
    assert capped["status"] == "incomplete" and capped["retryable_rows"] > 0, capped
    assert capped["credits_spent"] <= 10
    statuses = [r[0] for r in sheet.values(f"I2:I{LAST}")]
    assert "not enriched: spend cap reached" in statuses
    retried = bar.post(f"/jobs/{capped['job_id']}/retry", {"oauth_token": bar.token, "max_credits": None}, 202)
    done = bar.until(retried["job_id"])
    assert done["status"] == "done", done
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    assert "not enriched: spend cap reached" not in statuses
    drop = balance - world.balance()
    assert drop == capped["credits_spent"] + done["credits_spent"] == status_credits(statuses) == EXPECTED


def test_the_start_call_prices_the_selection_only_to_size_a_capped_jobs_hold(
    world, sheets_server, sheet, monkeypatch  # noqa: F811
) -> None:
    import core.sheets.service as service

    priced = []
    real_estimate = service.estimate_cost

    def estimate_cost(*args, **kwargs):
        priced.append(real_estimate(*args, **kwargs))
        return priced[-1]

    monkeypatch.setattr(service, "estimate_cost", estimate_cost)
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    capped = bar.start(f"A1:F{LAST}", max_credits=10_000)["job_id"]
    [estimate] = priced  # the hold is what the job can need: priced once, at the start call
    hold_id = world.services.enrichment_jobs.job(capped).hold_id
    held = world.services.accounts.ledger.hold_view(hold_id).amount_credits
    assert held == min(estimate.max_uncapped_credits, 10_000, balance) > 0
    assert bar.until(capped)["status"] == "done"
    uncapped = bar.start(f"A1:F{LAST}")["job_id"]
    assert len(priced) == 1  # no hold to size: the sidebar's preview priced it for the marketer
    assert world.services.enrichment_jobs.job(uncapped).hold_id is None
    assert bar.until(uncapped)["status"] == "done"


def test_no_identifier_column_is_422(world, sheets_server, sheet) -> None:  # noqa: F811
    bar = Sidebar(world, sheets_server, sheet)
    body = bar.job_body(f"A1:F{LAST}", mapping={"first_name": "A", "last_name": "B"})
    answer = bar.post("/preview", body, status=422)
    assert answer["errors"][0]["field"] == "mapping" and "no identifier column" in answer["detail"]
    clash = bar.job_body(f"A1:F{LAST}")
    clash["output"] = {"mode": "columns", "columns": {"email": "E", "mobile": "H", "status": "I"}}
    answer = bar.post("/jobs", clash, status=422)
    assert answer["errors"][0]["field"] == "output.columns.email"
    assert len(sheet.values(f"A1:F{LAST}")) == LAST and WIDTH == 6


def test_picked_output_columns_get_a_header_only_where_the_cell_is_empty(world, sheets_server, sheet) -> None:  # noqa: F811
    bar = Sidebar(world, sheets_server, sheet)
    sheet.set_cell("K1", "Direct dial")  # the user's own header over the column picked for mobiles
    body = bar.job_body(f"A1:F{LAST}")
    body["output"] = {"mode": "columns", "columns": {"email": "J", "mobile": "K", "status": "L"}}
    done = bar.until(bar.post("/jobs", body, status=202)["job_id"])
    assert done["status"] == "done", done
    assert [sheet.cell(a) for a in ("J1", "K1", "L1")] == ["tributary_email", "Direct dial", "tributary_status"]
    assert not any(sheet.cell(a) for a in ("G1", "H1", "I1"))  # the default columns were not used


BIG_ROWS = 10_000
BIG_PEOPLE = 300


@pytest.mark.slow
def test_ten_thousand_rows(db_url, google_certs, sheets_server) -> None:  # noqa: F811
    """The documented limit: 10,000 messy rows, email and mobile, in a few Sheets API calls."""
    world = make_world(db_url, google_certs, sheets_url=sheets_server.base_url)
    seed_people(world.services, BIG_PEOPLE)
    world.services.accounts.ledger.grant(world.team_id, 5000, key="big-sheet", expires_at=None)
    sheet = sheets_server.create_sheet([HEADER, *messy_rows(BIG_PEOPLE, BIG_ROWS)], row_count=BIG_ROWS + 1)
    last = BIG_ROWS + 1
    before = sheet.values(f"A1:F{last}")
    bar = Sidebar(world, sheets_server, sheet, poll_s=0.5)
    balance = world.balance()
    with workers(world, threads=2):
        reads_before = len(sheets_server.reads())
        done = bar.until(bar.start(f"A1:F{last}")["job_id"], timeout_s=240)
    assert done["status"] == "done" and done["rows_done"] == BIG_ROWS, done
    assert sheet.values(f"A1:F{last}") == before
    statuses = check_outputs_on_their_rows(sheet, last, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    drop = balance - world.balance()
    assert drop == done["credits_spent"] == status_credits(statuses) == expected_credits(before)
    job_reads = len(sheets_server.reads()) - reads_before
    assert job_reads <= 10 + 1 and len(sheets_server.writes()) <= 25  # +1: the selection's read by /jobs
    world.services.engine.dispose()


def test_the_sheet_renamed_mid_job(world, sheets_server, sheet) -> None:  # noqa: F811
    world.services.sheets.writer.min_rows = 10
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    renamed = []

    def rename(call) -> None:
        if call.kind == "write" and call.status == 200 and not renamed and "values:batchUpdate" in call.path:
            renamed.append(True)
            sheet.rename("Leads (old)")

    sheets_server.on_call(rename)
    done = bar.until(bar.start(f"A1:F{LAST}")["job_id"])
    assert renamed and done["status"] == "done", done
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    assert balance - world.balance() == done["credits_spent"] == status_credits(statuses) == EXPECTED


def test_a_pass_that_waited_for_the_lease_writes_and_counts_only_what_is_left(
    world, sheets_server, sheet, monkeypatch  # noqa: F811
) -> None:
    """Two workers' write passes overlap: one read the rows ready to write, then another pass took the
    lease and wrote them all before it. Holding the lease at last, it writes and counts only the rows
    still unwritten: "rows written" never exceeds the rows, and no status shows credits twice."""
    writer = world.services.sheets.writer
    writer.min_rows = 10
    real_run, real_claim = writer.run, writer.store.claim_writing
    opened, raced = [], []

    def run(job_id, open_sheet):
        opened.append(open_sheet)
        return real_run(job_id, open_sheet)

    def claim(job_id, lease_s):
        if not raced and opened:
            raced.append("racing")
            other = real_run(job_id, opened[-1])  # the other worker's whole pass, first
            while other.what == "busy":  # a third pass (a worker's wake-up) holds the lease: wait for it
                threading.Event().wait(0.02)
                other = real_run(job_id, opened[-1])
            raced.append(other)
        return real_claim(job_id, lease_s)

    monkeypatch.setattr(writer, "run", run)
    monkeypatch.setattr(writer.store, "claim_writing", claim)
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    done = bar.until(bar.start(f"A1:F{LAST}")["job_id"])
    assert len(raced) == 2 and raced[1].what in ("written", "nothing"), raced
    assert done["status"] == "done", done
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    store = world.services.sheets.store
    rows = store.rows(done["job_id"])
    written = [r for r in rows if r.written_row is not None]
    assert done["rows_written"] == len(written) <= ROWS
    assert balance - world.balance() == done["credits_spent"] == status_credits(statuses) == EXPECTED
    # A pass whose lease ran out settling rows again changes nothing, and counts nothing again.
    store.settle(done["job_id"], [Settled(r.row_index, "found", "found · 99 credits", 99, r.written_row) for r in rows])
    assert store.rows(done["job_id"]) == rows and store.job(done["job_id"]).rows_written == len(written)


def test_results_are_written_when_ready_without_waiting_for_a_poll(world, sheets_server, sheet) -> None:  # noqa: F811
    """The sidebar starts the job and never polls again (the schedule is off in these tests): the
    workers write the results themselves as chunks are stored and when the enrichment ends."""
    writer = world.services.sheets.writer
    writer.min_rows = 10
    # The first pass is still writing (it holds the lease) when the job's last chunk is stored, so that
    # chunk's wake-up finds the writer busy: the pass itself must see the enrichment ended and go on.
    last_chunk_woke = threading.Event()
    world.services.job_queue.enrichment.engine.after_chunk.append(  # runs after the Sheets wake-up
        lambda job_id: writer.enrichment_over(job_id) and last_chunk_woke.set()
    )
    held: list[bool] = []

    def hold_the_first_write(call) -> None:
        if call.kind == "write" and "values:batchUpdate" in call.path and not held:
            held.append(last_chunk_woke.wait(60))

    sheets_server.on_call(hold_the_first_write)
    bar = Sidebar(world, sheets_server, sheet)
    balance = world.balance()
    job_id = bar.start(f"A1:F{LAST}")["job_id"]
    store, deadline = world.services.sheets.store, time.monotonic() + 120
    while not store.job(job_id).final:
        assert time.monotonic() < deadline, store.job(job_id)
        threading.Event().wait(0.05)
    assert store.job(job_id).state == "done" and held == [True]
    statuses = check_outputs_on_their_rows(sheet, LAST, {"email": {"letter": "G"}, "mobile": {"letter": "H"},
                                                         "status": {"letter": "I"}})
    assert balance - world.balance() == status_credits(statuses) == EXPECTED
    assert len(sheets_server.writes()) >= 2  # written in passes while the job ran, then the last rows
