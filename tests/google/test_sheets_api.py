"""SheetsClient (gspread underneath) against the loopback Sheets API v4: every path both sides take."""

from __future__ import annotations

import email.utils
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sheets_addon import sheets_api
from sheets_addon.sheets_api import (
    MAX_RANGES_PER_READ,
    MAX_RETRY_AFTER_S,
    RATE_LIMITED_ATTEMPTS,
    SERVER_ERROR_ATTEMPTS,
    SheetInfo,
    SheetsApiError,
    SheetsClient,
    SheetsQuota,
)
from tests.google.fixtures import sheets_client
from tests.google.sheets_server import FakeClock, SheetsServer

USER = "ada@example.com"
ROWS = [
    ["Name", "Email", "Company"],
    ["Ada", "ada@example.com", "Analytical"],
    ["", "", ""],
    ["Bob", "", "Babbage & Co"],
    ["Émile", "émile@exemple.fr", ""],
]


@pytest.fixture
def sheet(sheets_server: SheetsServer):
    return sheets_server.create_sheet(ROWS, title="Leads 2024")


@pytest.fixture
def client(sheets_server: SheetsServer, sheet) -> SheetsClient:
    return sheets_client(sheets_server, sheets_server.issue_token(USER, sheet.spreadsheet_id), USER)


# ---- spreadsheets.get -------------------------------------------------------------------------


def test_sheet_properties_by_gid(sheets_server: SheetsServer, sheet, client: SheetsClient) -> None:
    other = sheets_server.create_sheet([["x"]], spreadsheet_id=sheet.spreadsheet_id, title="Other", sheet_id=77)
    assert client.sheet(sheet.spreadsheet_id, 77) == SheetInfo(sheet.spreadsheet_id, 77, "Other", 1000, 26)
    assert client.sheet(sheet.spreadsheet_id, 0).title == "Leads 2024"
    assert other.title == "Other"
    assert [c.kind for c in sheets_server.calls] == ["read", "read"]


def test_a_deleted_sheet_is_not_found(sheets_server: SheetsServer, sheet, client: SheetsClient) -> None:
    sheet.delete()
    with pytest.raises(SheetsApiError) as caught:
        client.sheet(sheet.spreadsheet_id, 0)
    assert caught.value.kind == "not_found"
    with pytest.raises(SheetsApiError) as caught:
        client.read(sheet.spreadsheet_id, ["'Leads 2024'!A1:C5"])
    assert caught.value.kind == "bad_request"  # Google's 400 "Unable to parse range"
    assert "renamed or deleted" in str(caught.value)


def test_a_renamed_sheet_is_found_again_by_its_gid(sheets_server: SheetsServer, sheet, client: SheetsClient) -> None:
    sheet.rename("Leads 2025")
    with pytest.raises(SheetsApiError, match="renamed or deleted") as caught:
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["x"]])])
    assert caught.value.kind == "bad_request"
    title = client.sheet(sheet.spreadsheet_id, 0).title
    client.write(sheet.spreadsheet_id, [(f"'{title}'!D2", [["x"]])])
    assert sheet.cell("D2") == "x"


def test_values_get_of_one_range_with_formulas(sheets_server: SheetsServer, sheet) -> None:
    sheet.set_cell("D2", "42", formula="=6*7")
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    url = f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}/values/'Leads 2024'!C2:D2"
    headers = {"Authorization": f"Bearer {token}"}
    shown = requests.get(url, headers=headers).json()
    formulas = requests.get(url, params={"valueRenderOption": "FORMULA"}, headers=headers).json()
    assert shown == {"range": "'Leads 2024'!C2:D2", "majorDimension": "ROWS", "values": [["Analytical", "42"]]}
    assert formulas["values"] == [["Analytical", "=6*7"]]
    assert [c.ranges for c in sheets_server.reads()] == [("'Leads 2024'!C2:D2",)] * 2


def test_the_fields_mask_is_honoured(sheets_server: SheetsServer, sheet) -> None:
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    url = f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}"
    headers = {"Authorization": f"Bearer {token}"}
    assert set(requests.get(url, params={"fields": "sheets.properties"}, headers=headers).json()) == {"sheets"}
    everything = requests.get(url, headers=headers).json()
    assert {"spreadsheetId", "properties", "sheets", "spreadsheetUrl"} <= set(everything)


# ---- values:batchGet ---------------------------------------------------------------------------


def test_read_pads_to_the_range_shape(sheet, client: SheetsClient) -> None:
    (values,) = client.read(sheet.spreadsheet_id, ["'Leads 2024'!A1:D7"])
    assert values == [row + [""] for row in ROWS] + [["", "", "", ""], ["", "", "", ""]]


def test_google_drops_trailing_empties_on_the_wire(sheets_server: SheetsServer, sheet) -> None:
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    answer = requests.get(
        f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}/values:batchGet",
        params={"ranges": ["'Leads 2024'!A1:D7", "'Leads 2024'!E1:F2"]},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    first, empty = answer["valueRanges"]
    assert first["range"] == "'Leads 2024'!A1:D7"
    assert first["values"][2] == [] and first["values"][3] == ["Bob", "", "Babbage & Co"]
    assert first["values"][4] == ["Émile", "émile@exemple.fr"] and len(first["values"]) == 5
    assert "values" not in empty


def test_open_ended_ranges_end_at_the_grid(sheet, client: SheetsClient) -> None:
    column, block, whole = client.read(sheet.spreadsheet_id, ["'Leads 2024'!B:B", "'Leads 2024'!A4:C", "'Leads 2024'"])
    assert len(column) == 1000 and column[1] == ["ada@example.com"] and column[999] == [""]
    assert block[0] == ["Bob", "", "Babbage & Co"] and len(block) == 997
    assert len(whole) == 1000 and len(whole[0]) == 26


def test_sheet_names_with_quotes_and_no_name_at_all(sheets_server: SheetsServer, client: SheetsClient, sheet) -> None:
    sheets_server.create_sheet([["it's here"]], spreadsheet_id=sheet.spreadsheet_id, title="Bob's list")
    quoted, first_sheet = client.read(sheet.spreadsheet_id, ["'Bob''s list'!A1", "A1:B1"])
    assert quoted == [["it's here"]]
    assert first_sheet == [["Name", "Email"]]


def test_many_ranges_are_read_in_few_requests(sheets_server: SheetsServer, sheet, client: SheetsClient) -> None:
    ranges = [f"'Leads 2024'!A{n}:C{n}" for n in range(1, MAX_RANGES_PER_READ + 11)]
    values = client.read(sheet.spreadsheet_id, ranges)
    assert values[1] == [ROWS[1]] and values[-1] == [["", "", ""]]
    reads = sheets_server.reads()
    assert [len(c.ranges) for c in reads] == [MAX_RANGES_PER_READ, 10]
    assert {c.value_render_option for c in reads} == {"FORMATTED_VALUE"}


def test_a_bad_range_is_a_bad_request(sheet, client: SheetsClient) -> None:
    with pytest.raises(SheetsApiError) as caught:
        client.read(sheet.spreadsheet_id, ["'Leads 2024'!A1:?"])
    assert caught.value.kind == "bad_request" and "Unable to parse range" in str(caught.value)


# ---- values:batchUpdate ------------------------------------------------------------------------


def test_writes_are_raw_so_formulas_stay_text(sheets_server: SheetsServer, sheet, client: SheetsClient) -> None:
    sent = client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2:E3", [["=HYPERLINK(\"x\")", "0018"], ["+1", "ok"]])])
    assert sent == 1
    assert sheet.values("D2:E3") == [['=HYPERLINK("x")', "0018"], ["+1", "ok"]]
    assert sheet.formula("D2") is None
    (call,) = sheets_server.writes()
    assert call.value_input_option == "RAW" and call.ranges == ("'Leads 2024'!D2:E3",)


def test_the_server_turns_user_entered_formulas_into_formulas(sheets_server: SheetsServer, sheet) -> None:
    # The contrast that makes the RAW test meaningful: this server does tell the two apart.
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    body = {"valueInputOption": "USER_ENTERED", "data": [{"range": "'Leads 2024'!D2", "values": [["=1+1", "0018"]]}]}
    answer = requests.post(
        f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}/values:batchUpdate",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200 and answer.json()["totalUpdatedCells"] == 2
    assert sheet.formula("D2") == "=1+1" and sheet.cell("E2") == "18"


def test_several_ranges_in_one_request_and_inputs_untouched(sheets_server: SheetsServer, sheet, client) -> None:
    client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["found"]]), ("'Leads 2024'!D4:E4", [["x", "y"]])])
    assert len(sheets_server.writes()) == 1
    assert sheet.values("A1:E5") == [
        ["Name", "Email", "Company", "", ""],
        ["Ada", "ada@example.com", "Analytical", "found", ""],
        ["", "", "", "", ""],
        ["Bob", "", "Babbage & Co", "x", "y"],
        ["Émile", "émile@exemple.fr", "", "", ""],
    ]


def test_big_writes_are_split_under_the_payload_limit(
    sheets_server: SheetsServer, sheet, client: SheetsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sheets_api, "MAX_WRITE_PAYLOAD_BYTES", 2_000)
    rows = [[f"person{n}@example.com", f"+4420{n:07d}"] for n in range(200)]
    updates = [("'Leads 2024'!D2:E201", rows), ("'Leads 2024'!F2", [["tail"]])]
    sent = client.write(sheet.spreadsheet_id, updates)
    writes = sheets_server.writes()
    assert sent == len(writes) >= 5
    assert all(c.body_bytes <= 2_000 for c in writes)
    assert sheet.values("D2:F201") == [[*row, "tail" if n == 0 else ""] for n, row in enumerate(rows)]


def test_a_write_past_the_grid_is_refused_until_the_grid_grows(sheets_server: SheetsServer, sheet, client) -> None:
    with pytest.raises(SheetsApiError) as caught:
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!AA2", [["x"]])])
    assert caught.value.kind == "bad_request" and "exceeds grid limits" in str(caught.value)
    info = client.ensure_grid(client.sheet(sheet.spreadsheet_id, 0), rows=1000, columns=28)
    assert info.column_count == 28 and sheet.column_count == 28
    assert client.ensure_grid(info, rows=10, columns=3) is info  # nothing to grow: no request
    client.write(sheet.spreadsheet_id, [("'Leads 2024'!AA2", [["x"]])])
    assert sheet.cell("AA2") == "x"


def test_a_write_larger_than_its_range_is_refused_whole(sheet, client: SheetsClient) -> None:
    with pytest.raises(SheetsApiError, match="tried writing to row"):
        too_many = [["a"], ["b"], ["c"]]
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["ok"]]), ("'Leads 2024'!E2:E3", too_many)])
    assert sheet.cell("D2") == ""  # batchUpdate is all or nothing


def test_nulls_leave_cells_alone_and_empty_strings_clear(sheets_server: SheetsServer, sheet) -> None:
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    body = {"valueInputOption": "RAW", "data": [{"range": "'Leads 2024'!A2:C2", "values": [[None, "", 7]]}]}
    requests.post(
        f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}/values:batchUpdate",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()
    assert sheet.values("A2:C2") == [["Ada", "", "7"]]


# ---- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["expire", "revoke"])
def test_an_expired_or_revoked_token_is_unauthorized(sheets_server: SheetsServer, sheet, how: str) -> None:
    token = sheets_server.issue_token(USER, sheet.spreadsheet_id)
    client = sheets_client(sheets_server, token, USER)
    client.read(sheet.spreadsheet_id, ["A1"])
    getattr(sheets_server, how)(token)
    with pytest.raises(SheetsApiError) as caught:
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["x"]])])
    assert caught.value.kind == "unauthorized" and caught.value.http_status == 401
    assert sheet.cell("D2") == ""
    assert sheets_server.calls[-1].status == 401


def test_an_unknown_token_is_unauthorized_with_googles_error(sheets_server: SheetsServer, sheet) -> None:
    answer = requests.get(
        f"{sheets_server.base_url}/v4/spreadsheets/{sheet.spreadsheet_id}", headers={"Authorization": "Bearer nope"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
    with pytest.raises(SheetsApiError, match="expired or revoked"):
        sheets_client(sheets_server, "nope", USER).sheet(sheet.spreadsheet_id, 0)


def test_a_spreadsheet_not_shared_is_forbidden_and_an_unknown_one_not_found(sheets_server: SheetsServer, sheet) -> None:
    mine = sheets_server.create_sheet([["mine"]])
    client = sheets_client(sheets_server, sheets_server.issue_token(USER, mine.spreadsheet_id), USER)
    with pytest.raises(SheetsApiError) as forbidden:
        client.read(sheet.spreadsheet_id, ["A1"])
    with pytest.raises(SheetsApiError) as missing:
        client.sheet("no-such-spreadsheet", 0)
    assert (forbidden.value.kind, missing.value.kind) == ("forbidden", "not_found")


def test_the_client_speaks_only_to_the_sheets_api(client: SheetsClient) -> None:
    with pytest.raises(SheetsApiError, match="only speaks to the Sheets API"):
        client._http.request("get", "https://www.googleapis.com/drive/v3/files")


# ---- quota, 429 and 5xx ------------------------------------------------------------------------


def test_429s_wait_out_retry_after_and_never_fail(sheets_server_quota: SheetsServer, sheets_clock: FakeClock) -> None:
    sheet = sheets_server_quota.create_sheet(ROWS)
    token = sheets_server_quota.issue_token(USER, sheet.spreadsheet_id)
    # No client-side budget: every request past 60 in a minute earns a 429.
    quota = SheetsQuota(1_000_000, 1_000_000, clock=sheets_clock.time, sleep=sheets_clock.sleep)
    client = sheets_client(sheets_server_quota, token, USER, quota)
    for _ in range(130):
        assert client.read(sheet.spreadsheet_id, ["A1"]) == [[["Name"]]]
    assert len(sheets_server_quota.reads()) == 130
    assert sheets_server_quota.reads(status=429)
    assert sheets_clock.slept and max(sheets_clock.slept) <= MAX_RETRY_AFTER_S
    assert 120 <= sheets_clock.now_s - 1000 <= 121 + MAX_RETRY_AFTER_S


def test_429s_without_retry_after_back_off(sheets_clock: FakeClock) -> None:
    with SheetsServer(writes_per_minute=3, clock=sheets_clock.time, retry_after=False) as server:
        sheet = server.create_sheet(ROWS)
        quota = SheetsQuota(1_000_000, 1_000_000, clock=sheets_clock.time, sleep=sheets_clock.sleep)
        client = sheets_client(server, server.issue_token(USER, sheet.spreadsheet_id), USER, quota)
        for n in range(7):
            client.write(sheet.spreadsheet_id, [(f"'Sheet1'!D{n + 1}", [[str(n)]])])
        assert [row[0] for row in sheet.values("D1:D7")] == [str(n) for n in range(7)]
        assert len(server.writes(status=429)) >= 2
        assert all(0 < s <= MAX_RETRY_AFTER_S for s in sheets_clock.slept)


def test_the_client_budget_keeps_the_server_from_saying_429(
    sheets_server_quota: SheetsServer, sheets_clock: FakeClock
) -> None:
    sheet = sheets_server_quota.create_sheet(ROWS)
    token = sheets_server_quota.issue_token(USER, sheet.spreadsheet_id)
    quota = SheetsQuota(60, 60, clock=sheets_clock.time, sleep=sheets_clock.sleep)
    client = sheets_client(sheets_server_quota, token, USER, quota)
    for n in range(150):
        client.write(sheet.spreadsheet_id, [(f"'Sheet1'!D{n + 1}", [["x"]])])
    assert len(sheets_server_quota.writes()) == 150
    assert sheets_server_quota.writes(status=429) == []
    assert 120 <= sheets_clock.now_s - 1000 < 121


def test_429s_that_never_stop_end_as_unavailable(sheets_server: SheetsServer, sheet, sheets_clock) -> None:
    quota = SheetsQuota(1_000, 1_000, clock=sheets_clock.time, sleep=sheets_clock.sleep)
    client = sheets_client(sheets_server, sheets_server.issue_token(USER, sheet.spreadsheet_id), USER, quota)
    sheets_server.fail_next(*[429] * RATE_LIMITED_ATTEMPTS)
    with pytest.raises(SheetsApiError) as caught:
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["x"]])])
    assert caught.value.kind == "unavailable" and "429" in str(caught.value)
    assert len(sheets_server.writes(status=429)) == RATE_LIMITED_ATTEMPTS
    assert len(sheets_clock.slept) == RATE_LIMITED_ATTEMPTS - 1
    assert all(0 < s <= MAX_RETRY_AFTER_S for s in sheets_clock.slept)


def test_server_errors_are_retried_then_unavailable(sheets_server: SheetsServer, sheet, sheets_clock) -> None:
    quota = SheetsQuota(100, 100, clock=sheets_clock.time, sleep=sheets_clock.sleep)
    client = sheets_client(sheets_server, sheets_server.issue_token(USER, sheet.spreadsheet_id), USER, quota)
    sheets_server.fail_next(500, 503)
    assert client.read(sheet.spreadsheet_id, ["A1"]) == [[["Name"]]]
    sheets_server.fail_next(*[500] * SERVER_ERROR_ATTEMPTS)
    with pytest.raises(SheetsApiError) as caught:
        client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["x"]])])
    assert caught.value.kind == "unavailable" and caught.value.http_status == 503
    assert sheet.cell("D2") == ""


def test_an_unreachable_api_is_unavailable(sheets_clock: FakeClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quota = SheetsQuota(100, 100, clock=sheets_clock.time, sleep=sheets_clock.sleep)
    client = SheetsClient("t", base_url=f"http://127.0.0.1:{port}", user_key=USER, limits=quota)
    with pytest.raises(SheetsApiError) as caught:
        client.sheet("x", 0)
    assert caught.value.kind == "unavailable" and "network error" in str(caught.value)
    assert len(sheets_clock.slept) == SERVER_ERROR_ATTEMPTS - 1


# ---- test hooks: the sheet changes under the job -----------------------------------------------


def test_sort_insert_delete_and_edit_as_a_user_would(sheets_server: SheetsServer, sheet, client) -> None:
    sheet.sort_rows("A", start_row=2)
    assert [r[0] for r in client.read(sheet.spreadsheet_id, ["'Leads 2024'!A1:A5"])[0]] == [
        "Name", "", "Ada", "Bob", "Émile",
    ]
    sheet.insert_rows(2, 2, values=[["New", "new@example.com"]])
    sheet.delete_rows(5)
    sheet.set_cell("B2", "changed@example.com")
    assert client.read(sheet.spreadsheet_id, ["'Leads 2024'!A1:B6"])[0] == [
        ["Name", "Email"],
        ["New", "changed@example.com"],
        ["", ""],
        ["", ""],
        ["Bob", ""],
        ["Émile", "émile@exemple.fr"],
    ]
    assert client.sheet(sheet.spreadsheet_id, 0).row_count == 1001


def test_on_call_changes_the_sheet_after_the_kth_write(sheets_server: SheetsServer, sheet, client) -> None:
    def after_first_write(call) -> None:
        if call.kind == "write" and len(sheets_server.writes()) == 1:
            sheet.delete_rows(2)

    sheets_server.on_call(after_first_write)
    client.write(sheet.spreadsheet_id, [("'Leads 2024'!D2", [["first"]])])
    assert sheet.values("A2:D2") == [["", "", "", ""]]  # Ada's row (with "first") is gone
    client.write(sheet.spreadsheet_id, [("'Leads 2024'!D3", [["second"]])])
    assert sheet.values("A3:D3") == [["Bob", "", "Babbage & Co", "second"]]


def test_formulas_typed_by_the_user_read_as_their_values(sheets_server: SheetsServer) -> None:
    sheet = sheets_server.create_sheet([["a", "=A1"]])
    sheet.set_cell("B1", "a", formula="=A1")
    client = sheets_client(sheets_server, sheets_server.issue_token(USER, sheet.spreadsheet_id), USER)
    assert client.read(sheet.spreadsheet_id, ["A1:B1"]) == [[["a", "a"]]]
    assert sheet.formula("B1") == "=A1"


def test_retry_after_as_seconds_or_as_an_http_date() -> None:
    def answer(value: str) -> requests.Response:
        response = requests.Response()
        response.headers["Retry-After"] = value
        return response

    assert sheets_api._retry_after_s(answer("17")) == 17.0
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= sheets_api._retry_after_s(answer(later)) <= 31
    assert sheets_api._retry_after_s(answer("soon")) is None
