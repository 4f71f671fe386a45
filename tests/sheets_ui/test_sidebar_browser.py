"""The sidebar in a real browser (headless Debian Chromium) against the real backend on loopback.

The page is the bundled Sidebar.html; its google.script.run goes to a stand-in Apps Script host that
runs the bundled Code.gs, whose UrlFetchApp calls the one Flask app (sheets blueprint) with an ID
token minted by the tests' Google key and an OAuth token granted on the loopback Sheets API. Jobs
run on a real huey consumer. SQLite only: this is the front end; the backend's own suites cover
both databases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sheets_addon.a1 import column_index
from tests.sheets_ui.harness import AppsScriptHost, chromium_page, require_browser_tools
from tests.sheets_ui.world import LEADS, MEMBER_EMAIL, OUTSIDER_EMAIL, SidebarWorld, sidebar_world

JOB_DONE_TIMEOUT_MS = 90_000  # a deadline for the job to finish, not a timing assertion
STARTING_BALANCE = 100  # the free plan's credits
OUTPUT_KINDS = ("email", "mobile", "status")


@pytest.fixture
def world(db_url: str, tmp_path: Path):
    with sidebar_world(db_url, tmp_path / "world") as w:
        yield w


def _prices(world: SidebarWorld) -> tuple[int, int]:
    plan = world.services.accounts.team("acme").plan
    return plan.price_email_credits, plan.price_mobile_credits


def _balance(world: SidebarWorld) -> int:
    return world.services.ledger.balance(world.services.accounts.team("acme").id).available_credits


def _calls(host: AppsScriptHost, path: str) -> list[dict]:
    return [c for c in host.sent() if c["url"].endswith("/sheets/v1" + path)]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_map_preview_enrich_to_100_percent(world: SidebarWorld, tmp_path: Path) -> None:
    node = require_browser_tools()
    with AppsScriptHost(node, world.bundle_dir, world.user(), tmp_path) as host, chromium_page() as page:
        page.goto(host.url)
        # Who the member is, their team and balance.
        expect(page.locator("#who-email")).to_have_text(MEMBER_EMAIL)
        expect(page.locator("#who-team")).to_have_text("acme")
        expect(page.locator("#who-balance")).to_have_text(str(STARTING_BALANCE))

        # The header row detected: names found, "Firm" not recognised; the member maps it.
        expect(page.locator("#sel-summary")).to_contain_text("Leads!A1:E5: header row 1, rows 2–5 (4 rows")
        expect(page.locator("#map-A")).to_have_value("first_name")
        expect(page.locator("#map-B")).to_have_value("last_name")
        expect(page.locator("#map-C")).to_have_value("")
        expect(page.locator("#map-D")).to_have_value("email")
        page.select_option("#map-C", "company")
        page.check("#want-mobile")
        expect(page.locator("#out-new")).to_be_checked()  # results go to new columns unless picked
        page.fill("#cap", "50")
        expect(page.locator("#enrich-btn")).to_be_disabled()  # settings changed: no stale preview
        page.click("#preview-btn")
        expect(page.locator("#preview-btn")).to_be_enabled()  # disabled while the call runs

        # The exact preview: three rows carry an identifier, each can cost an email and a mobile.
        email_price, mobile_price = _prices(world)
        max_credits = 3 * (email_price + mobile_price)
        expect(page.locator("#pv-rows")).to_have_text("4")
        expect(page.locator("#pv-with-id")).to_have_text("3")
        expect(page.locator("#pv-without-id")).to_have_text("1")
        expect(page.locator("#pv-free")).to_have_text("0 rows")
        expect(page.locator("#pv-max")).to_have_text(f"{max_credits} credits")
        expect(page.locator("#pv-cap")).to_have_text("50 credits")
        expect(page.locator("#pv-balance")).to_have_text(f"{STARTING_BALANCE} credits")
        preview = _calls(host, "/preview")[-1]
        outputs = preview["answer"]["outputs"]
        named = ", ".join(f"{outputs[k]['letter']} “{outputs[k]['header']}”" for k in ("email", "mobile", "status"))
        expect(page.locator("#pv-outputs")).to_have_text(f"Results go to {named}.")
        assert preview["body"] == {
            "sheet": {"spreadsheet_id": world.sheet.spreadsheet_id, "sheet_id": world.sheet.sheet_id,
                      "sheet_name": "Leads", "range_a1": "A1:E5"},
            "oauth_token": world.oauth_token,
            "mapping": {"first_name": "A", "last_name": "B", "company": "C", "email": "D"},
            "want": {"email": True, "mobile": True},
            "output": {"mode": "new_columns", "columns": {}},
            "max_credits": 50,
        }
        assert preview["answer"]["max_credits"] == max_credits
        page.screenshot(path=str(tmp_path / "sidebar-preview.png"), full_page=True)

        # Enrich: the bar reaches 100 % and the summary appears.
        page.click("#enrich-btn")
        expect(page.locator("#progress")).to_be_visible()
        expect(page.locator("#summary")).to_be_visible(timeout=JOB_DONE_TIMEOUT_MS)
        polls = [c["answer"] for c in _calls(host, "/jobs/1/poll")]
        last = polls[-1]
        assert last["status"] == "done", last
        percents = [p["percent"] for p in polls]
        assert percents == sorted(percents) and percents[-1] == 100, percents  # the bar only moves forward
        expect(page.locator("#pg-percent")).to_have_text("100 %")
        expect(page.locator("#bar")).to_have_attribute("style", re.compile(r"width: 100%"))
        expect(page.locator("#pg-rows")).to_have_text("4 / 4")
        expect(page.locator("#pg-written")).to_have_text(str(last["rows_written"]))
        expect(page.locator("#pg-credits")).to_have_text(str(last["credits_spent"]))
        expect(page.locator("#sum-skipped")).to_have_text("1")
        page.screenshot(path=str(tmp_path / "sidebar-done.png"), full_page=True)
        assert (tmp_path / "sidebar-done.png").stat().st_size > 0

        # Money: what the sidebar shows as spent is what the ledger lost, and the balance it shows.
        spent = last["credits_spent"]
        assert 0 < spent <= max_credits
        assert _balance(world) == STARTING_BALANCE - spent
        expect(page.locator("#who-balance")).to_have_text(str(STARTING_BALANCE - spent))

        # The sheet: inputs untouched, results only in the new columns the preview named, on their rows.
        email_col, mobile_col, status_col = (column_index(outputs[k]["letter"]) - 1 for k in OUTPUT_KINDS)
        assert min(email_col, mobile_col, status_col) > 4, outputs  # right of the data, never over it
        values = world.sheet.values()
        assert [row[:5] for row in values[:5]] == LEADS
        assert [values[0][c] for c in (email_col, mobile_col, status_col)] == [
            outputs[k]["header"] for k in ("email", "mobile", "status")
        ]
        assert values[1][email_col] == "jane.doe@acmecorp.test" and values[1][mobile_col] == "+15125550199"
        assert values[4][email_col] == values[4][mobile_col] == ""  # the row without identifiers
        statuses = [values[r][status_col] for r in (1, 2, 3)]
        assert [s.split(" ·")[0] for s in statuses] == ["found", "found", "not found"], values
        written = {(r, c) for r, row in enumerate(values) for c, v in enumerate(row) if v and c >= 5}
        assert {c for _, c in written} <= {email_col, mobile_col, status_col}, written

        assert page.blocked == [], "the sidebar loads nothing from outside the add-on"

        # Code.gs sent each call with the ID token, and the OAuth token only where the sheet is touched.
        for call in host.sent():
            assert call["headers"]["Authorization"].startswith("Bearer ey"), call
            assert ("oauth_token" in call["body"]) == (not call["url"].endswith(("/session", "/cancel"))), call


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_error_is_the_backends_sentence(world: SidebarWorld, tmp_path: Path) -> None:
    node = require_browser_tools()
    outsider = world.user(email=OUTSIDER_EMAIL)
    with AppsScriptHost(node, world.bundle_dir, outsider, tmp_path) as host, chromium_page() as page:
        # A Google user who is no member: the backend's 403 sentence, and nothing else.
        page.goto(host.url)
        expected = f"{OUTSIDER_EMAIL} is not a member of a Tributary team: ask your admin to add you"
        expect(page.locator("#error")).to_have_text(expected)
        assert _calls(host, "/session")[-1]["answer"]["detail"] == expected
        expect(page.locator("#who")).to_be_hidden()
        expect(page.locator("#setup")).to_be_hidden()

        # A member with nothing selected: Code.gs says so before calling anything.
        member = world.user(range_a1=None)
        host.configure(identityToken=member.identityToken, rangeA1=None)
        page.reload()
        expect(page.locator("#error")).to_have_text("Select the rows to enrich (with their header row) first.")
        expect(page.locator("#who-email")).to_have_text(MEMBER_EMAIL)
        assert not _calls(host, "/selection")

        # No identifier column mapped: the backend's 422 sentence naming the field.
        host.configure(rangeA1="A1:E5")
        page.click("#refresh-btn")
        expect(page.locator("#map-A")).to_have_value("first_name")
        expect(page.locator("#preview-btn")).to_be_enabled()  # the automatic first preview is over
        for letter in "ABCD":
            page.select_option(f"#map-{letter}", "")
        page.click("#preview-btn")
        expect(page.locator("#preview-btn")).to_be_enabled()
        expect(page.locator("#error")).to_be_visible()
        problem = _calls(host, "/preview")[-1]["answer"]
        assert _calls(host, "/preview")[-1]["status"] == 422, problem
        expect(page.locator("#error")).to_have_text(problem["detail"])
        expect(page.locator("#enrich-btn")).to_be_disabled()
        page.screenshot(path=str(tmp_path / "sidebar-error.png"), full_page=True)

        # An expired ID token: 401, its sentence shown as is.
        host.configure(identityToken=world.certs.mint_id_token(MEMBER_EMAIL, expires_in_s=-60))
        page.reload()
        expect(page.locator("#error")).to_be_visible()
        problem = _calls(host, "/session")[-1]
        assert problem["status"] == 401
        expect(page.locator("#error")).to_have_text(problem["answer"]["detail"])


def _set_up_enrichment(page, cap: str) -> None:
    """Map Firm to Company, find email and mobile into F:H, with a spend cap, and preview."""
    expect(page.locator("#map-A")).to_have_value("first_name")
    page.select_option("#map-C", "company")
    page.check("#want-mobile")
    page.check("#out-pick")
    page.fill("#col-email", "F")
    page.fill("#col-mobile", "G")
    page.fill("#col-status", "H")
    page.fill("#cap", cap)
    page.click("#preview-btn")
    expect(page.locator("#preview-btn")).to_be_enabled()
    expect(page.locator("#enrich-btn")).to_be_enabled()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_spend_cap_then_retry_the_failed_rows(world: SidebarWorld, tmp_path: Path) -> None:
    node = require_browser_tools()
    with AppsScriptHost(node, world.bundle_dir, world.user(), tmp_path) as host, chromium_page() as page:
        page.goto(host.url)
        _set_up_enrichment(page, cap="1")
        expect(page.locator("#pv-cap")).to_have_text("1 credit")
        page.click("#enrich-btn")
        expect(page.locator("#summary")).to_be_visible(timeout=JOB_DONE_TIMEOUT_MS)
        first = _calls(host, "/jobs/1/poll")[-1]["answer"]
        assert first["retryable_rows"] > 0, first
        expect(page.locator("#retry-btn")).to_have_text(
            f"Retry the {first['retryable_rows']} failed row{'s' if first['retryable_rows'] != 1 else ''}"
        )
        page.screenshot(path=str(tmp_path / "sidebar-retry.png"), full_page=True)

        expect(page.locator("#retry-cap")).to_have_value("")  # no cap for the retry unless one is typed
        page.click("#retry-btn")
        # The new job covers the three rows the first did not enrich (the skipped row stays skipped).
        expect(page.locator("#pg-rows")).to_have_text(re.compile(r"^\d / 3$"))
        retry = _calls(host, "/jobs/1/retry")[-1]
        assert retry["body"] == {"oauth_token": world.oauth_token, "max_credits": None}
        second_id = retry["answer"]["job_id"]
        assert second_id != 1
        expect(page.locator("#pg-rows")).to_have_text("3 / 3", timeout=JOB_DONE_TIMEOUT_MS)
        expect(page.locator("#summary")).to_be_visible(timeout=JOB_DONE_TIMEOUT_MS)
        expect(page.locator("#retry-btn")).to_be_hidden()
        second = _calls(host, f"/jobs/{second_id}/poll")[-1]["answer"]
        assert second["status"] == "done", second
        values = world.sheet.values("A1:H5")
        assert values[1][5] == "jane.doe@acmecorp.test"
        # Capped then retried costs what one uncapped run costs (Jane's email and mobile): nothing twice.
        spent = first["credits_spent"] + second["credits_spent"]
        assert spent == sum(_prices(world))
        assert _balance(world) == STARTING_BALANCE - spent
        expect(page.locator("#who-balance")).to_have_text(str(STARTING_BALANCE - spent))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_reopened_sidebar_resumes_the_job_and_cancel_charges_nothing(db_url: str, tmp_path: Path) -> None:
    node = require_browser_tools()
    with (
        sidebar_world(db_url, tmp_path / "world", workers=False) as world,
        AppsScriptHost(node, world.bundle_dir, world.user(), tmp_path) as host,
        chromium_page() as page,
    ):
        page.goto(host.url)
        _set_up_enrichment(page, cap="")
        page.click("#enrich-btn")
        expect(page.locator("#progress")).to_be_visible()
        expect(page.locator("#pg-status")).to_have_text("Queued")

        # The member closes the sidebar and opens it again: the job is found and followed.
        page.reload()
        expect(page.locator("#progress")).to_be_visible()
        expect(page.locator("#setup")).to_be_hidden()
        expect(page.locator("#pg-rows")).to_have_text("0 / 4")
        assert _calls(host, "/jobs/1/poll"), "the reopened sidebar polls the job it left"

        page.click("#cancel-btn")
        expect(page.locator("#cancel-btn")).to_have_text("Cancelling…")
        expect(page.locator("#cancel-btn")).to_be_disabled()
        world.start_workers()  # the workers come back and find the job cancelled
        expect(page.locator("#summary")).to_be_visible(timeout=JOB_DONE_TIMEOUT_MS)
        expect(page.locator("#sum-title")).to_have_text("Cancelled")
        assert _calls(host, "/jobs/1/cancel")[-1]["body"] == {}
        assert _balance(world) == STARTING_BALANCE
        assert [row[:5] for row in world.sheet.values("A1:E5")] == LEADS

        # Opened again after the end: a fresh start, no job left to follow.
        page.reload()
        expect(page.locator("#setup")).to_be_visible()
        expect(page.locator("#progress")).to_be_hidden()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_sheet_deleted_mid_job_and_a_selection_over_the_limit_say_so(db_url: str, tmp_path: Path) -> None:
    node = require_browser_tools()
    with (
        sidebar_world(db_url, tmp_path / "world", workers=False, sheets_max_rows=3) as world,
        AppsScriptHost(node, world.bundle_dir, world.user(), tmp_path) as host,
        chromium_page() as page,
    ):
        # Four data rows selected where the deployment allows three: the backend's 422, as is.
        page.goto(host.url)
        expect(page.locator("#error")).to_be_visible()
        problem = _calls(host, "/selection")[-1]
        assert problem["status"] == 422, problem
        expect(page.locator("#error")).to_have_text(problem["answer"]["detail"])

        # Three rows: allowed. The job is queued, then the member deletes the sheet.
        host.configure(rangeA1="A1:E4")
        page.click("#refresh-btn")
        _set_up_enrichment(page, cap="")
        page.click("#enrich-btn")
        expect(page.locator("#pg-status")).to_have_text("Queued")
        world.sheet.delete()
        world.start_workers()
        expect(page.locator("#summary")).to_be_visible(timeout=JOB_DONE_TIMEOUT_MS)
        last = _calls(host, "/jobs/1/poll")[-1]["answer"]
        assert last["status"] in ("failed", "incomplete"), last
        assert last["message"], last
        expect(page.locator("#pg-message")).to_have_text(last["message"])
        title = "Failed" if last["status"] == "failed" else "Finished with rows left"
        expect(page.locator("#sum-title")).to_have_text(title)
        expect(page.locator("#bar")).to_have_class(re.compile("stopped") if last["status"] == "failed" else "")
        page.screenshot(path=str(tmp_path / "sidebar-sheet-deleted.png"), full_page=True)
