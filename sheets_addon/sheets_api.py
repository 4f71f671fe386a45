"""The Sheets API v4 as the add-on uses it: one sheet's properties, batched reads, batched RAW writes.

gspread speaks the protocol; this module adds what a job needs around it: the API origin from
settings (gspread's URLs are constants, so its HTTP client rewrites the origin instead of anything
being patched), a per-user request budget (SheetsQuota), retries of 429 (honouring Retry-After) and
5xx with tenacity, Google's errors turned into SheetsApiError kinds, and writes split so no request
body passes MAX_WRITE_PAYLOAD_BYTES.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import google.auth.transport.requests
import google.oauth2.credentials
import gspread
import requests
import tenacity
from gspread import urls as gspread_urls

from core.errors import TributaryError
from sheets_addon.a1 import A1Range, parse_range

T = TypeVar("T")
Kind = Literal["read", "write"]

# Google recommends request bodies under ~2 MB; stay well below it (JSON overhead is counted).
MAX_WRITE_PAYLOAD_BYTES = 1_800_000
# The request body around the updates: {"valueInputOption": "RAW", "data": [...]}.
_BODY_OVERHEAD_BYTES = 64
# Ranges per values:batchGet request (they go in the URL, which Google caps at a few KB).
MAX_RANGES_PER_READ = 50
# A 429's Retry-After is honoured up to this; without one, backoff doubles up to it.
MAX_RETRY_AFTER_S = 60.0
# 429s retried this many times in a row (at up to MAX_RETRY_AFTER_S each) before giving up.
RATE_LIMITED_ATTEMPTS = 30
# 5xx answers and network failures: attempts, first backoff (doubling).
SERVER_ERROR_ATTEMPTS = 4
SERVER_ERROR_BACKOFF_S = 0.5
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
QUOTA_WINDOW_S = 60.0

GOOGLE_SHEETS_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(gspread_urls.SPREADSHEETS_API_V4_BASE_URL))

_MESSAGES = {
    "unauthorized": "Google refused the access token (expired or revoked): open the sidebar again",
    "forbidden": "this Google account may not read or write the spreadsheet",
    "not_found": "the spreadsheet or sheet no longer exists",
    "bad_request": "Google refused the request as invalid",
    "unavailable": "Google Sheets is not answering right now; the job will try again",
}
_HTTP_STATUS = {"unauthorized": 401, "forbidden": 403, "not_found": 404, "bad_request": 400, "unavailable": 503}


class SheetsApiError(TributaryError):
    """Google said no, or could not be reached. `kind` is what a job does about it:

    unauthorized (the user's access token is expired or revoked: wait for a fresh one), forbidden,
    not_found (spreadsheet or sheet deleted), bad_request, unavailable (retries exhausted)."""

    def __init__(self, kind: str, message: str | None = None) -> None:
        super().__init__(message or _MESSAGES.get(kind, kind))
        self.kind = kind
        self.http_status = _HTTP_STATUS.get(kind, 400)


@dataclass(frozen=True)
class SheetInfo:
    spreadsheet_id: str
    sheet_id: int
    title: str
    row_count: int
    column_count: int


class SheetsQuota:
    """Sheets API requests per user and rolling minute, counted in this process only.

    Google's quota is 60 reads and 60 writes per minute per user (and 300 per project); a request
    over this process's budget waits for a slot instead of being sent to earn a 429. Several
    processes each keep their own count, so set the limits to Google's quota divided by the number
    of processes that may work for one user at once (429s are still retried, never fatal).
    `clock` and `sleep` are injectable so tests can run a minute without waiting one.
    """

    def __init__(
        self,
        reads_per_minute: int,
        writes_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = {"read": reads_per_minute, "write": writes_per_minute}
        self.clock = clock
        self.sleep = sleep
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> SheetsQuota:
        return cls(settings.sheets_reads_per_minute, settings.sheets_writes_per_minute)

    def _slot_or_wait(self, user_key: str, kind: Kind) -> float:
        """Take a slot now (0.0) or say how long until one frees up."""
        with self._lock:
            now = self.clock()
            sent = self._sent.setdefault((user_key, kind), deque())
            while sent and sent[0] <= now - QUOTA_WINDOW_S:
                sent.popleft()
            if len(sent) < self.limits[kind]:
                sent.append(now)
                return 0.0
            return max(sent[0] + QUOTA_WINDOW_S - now, 0.001)

    def acquire(self, user_key: str, kind: Kind) -> float:
        """Block until `user_key` may send one more `kind` request; returns the seconds waited."""
        waited = 0.0
        while (wait := self._slot_or_wait(user_key, kind)) > 0:
            self.sleep(wait)
            waited += wait
        return waited

    def sent_in_window(self, user_key: str, kind: Kind) -> int:
        with self._lock:
            now = self.clock()
            return sum(1 for t in self._sent.get((user_key, kind), ()) if t > now - QUOTA_WINDOW_S)


class _Transient(Exception):
    """A 429, 5xx or network failure: worth another attempt."""

    def __init__(self, status: int | None, retry_after_s: float | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after_s = retry_after_s


class _OriginHTTPClient(gspread.HTTPClient):
    """gspread's HTTP client sending to the configured origin instead of sheets.googleapis.com."""

    def __init__(self, auth: Any, session: requests.Session | None = None, *, base_url: str) -> None:
        super().__init__(auth, session)
        self.origin = base_url.rstrip("/")

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> requests.Response:
        if not endpoint.startswith(GOOGLE_SHEETS_ORIGIN + "/"):
            raise SheetsApiError("bad_request", f"the Sheets client only speaks to the Sheets API, not {endpoint}")
        return super().request(method, self.origin + endpoint[len(GOOGLE_SHEETS_ORIGIN) :], *args, **kwargs)


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _google_message(exc: gspread.exceptions.APIError) -> str:
    message = exc.error.get("message") if isinstance(exc.error, dict) else None
    return str(message)[:300] if message else ""


def _classify(exc: gspread.exceptions.APIError) -> Exception:
    status = exc.response.status_code
    if status == 429:
        return _Transient(429, _retry_after_s(exc.response), "rate limited (429)")
    if status >= 500:
        return _Transient(status, None, f"Google answered {status}")
    kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "bad_request")
    detail = _google_message(exc)
    if status == 400 and detail.startswith("Unable to parse range"):
        # Ranges are built from the sheet's title: one Google cannot parse usually means the sheet
        # was renamed or deleted since (`sheet(gid)` tells which). Still Google's 400.
        return SheetsApiError("bad_request", f"Google cannot find the range (sheet renamed or deleted?): {detail}")
    if kind == "bad_request" and detail:
        return SheetsApiError(kind, f"Google refused the request: {detail}")
    return SheetsApiError(kind)


def _wait_s(state: tenacity.RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    attempt = state.attempt_number
    if isinstance(exc, _Transient) and exc.status == 429:
        if exc.retry_after_s is not None:
            return min(exc.retry_after_s, MAX_RETRY_AFTER_S)
        return min(2.0 ** (attempt - 1), MAX_RETRY_AFTER_S) * (0.5 + random.random() / 2)
    return SERVER_ERROR_BACKOFF_S * 2 ** (attempt - 1)


def _stop(state: tenacity.RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Transient) and exc.status == 429:
        return state.attempt_number >= RATE_LIMITED_ATTEMPTS
    return state.attempt_number >= SERVER_ERROR_ATTEMPTS


def _shape(a1: str) -> tuple[int, int] | None:
    """Rows x columns of a bounded range as Google answers it (`'Sheet 1'!A2:F200`)."""
    try:
        grid = parse_range(a1)
    except TributaryError:
        return None
    if None in (grid.start_row, grid.end_row, grid.start_col, grid.end_col):
        return None
    return grid.end_row - grid.start_row + 1, grid.end_col - grid.start_col + 1  # type: ignore[operator]


def _padded(value_range: dict[str, Any]) -> list[list[str]]:
    """Google drops trailing empty rows and cells; put them back to the answered range's shape."""
    rows = [["" if cell is None else str(cell) for cell in row] for row in value_range.get("values", [])]
    shape = _shape(str(value_range.get("range", "")))
    if shape is None:
        return rows
    height, width = shape
    rows = rows[:height] + [[] for _ in range(height - len(rows))]
    return [row[:width] + [""] * (width - len(row)) for row in rows]


def _payload_bytes(item: dict[str, Any]) -> int:
    # As requests serialises a json= body (ASCII-escaped), plus the separator between items.
    return len(json.dumps(item).encode("ascii")) + 2


def _split_item(a1: str, values: list[list[str]]) -> list[dict[str, Any]]:
    """One update small enough for a request, or its rows cut into several (ranges adjusted)."""
    item = {"range": a1, "majorDimension": "ROWS", "values": values}
    size = _payload_bytes(item)
    if size <= MAX_WRITE_PAYLOAD_BYTES - _BODY_OVERHEAD_BYTES or len(values) < 2:
        return [item]
    grid = parse_range(a1)
    if grid.start_row is None:
        raise SheetsApiError("bad_request", f"cannot split a write to {a1!r}: the range names no start row")
    pieces = math.ceil(size / (MAX_WRITE_PAYLOAD_BYTES * 0.9))
    step = math.ceil(len(values) / pieces)
    out: list[dict[str, Any]] = []
    for offset in range(0, len(values), step):
        part = values[offset : offset + step]
        first = grid.start_row + offset
        sub = A1Range(grid.sheet, grid.start_col, first, grid.end_col, first + len(part) - 1)
        out.extend(_split_item(sub.to_a1(), part))
    return out


def _batches(updates: list[tuple[str, list[list[str]]]]) -> list[list[dict[str, Any]]]:
    """Updates packed, in order, into request bodies under MAX_WRITE_PAYLOAD_BYTES each."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    current_bytes = 0
    limit = MAX_WRITE_PAYLOAD_BYTES - _BODY_OVERHEAD_BYTES
    for a1, values in updates:
        for item in _split_item(a1, values):
            size = _payload_bytes(item)
            if current and current_bytes + size > limit:
                batches.append(current)
                current, current_bytes = [], 0
            current.append(item)
            current_bytes += size
    if current:
        batches.append(current)
    return batches


class SheetsClient:
    """One user's access to the Sheets API (their OAuth access token), within `limits`."""

    def __init__(self, access_token: str, *, base_url: str, user_key: str, limits: SheetsQuota) -> None:
        credentials = google.oauth2.credentials.Credentials(access_token)
        # No refresh on 401: an access token from Apps Script cannot be refreshed here; a 401 is
        # reported (kind "unauthorized") so the job waits for the sidebar's next token.
        session = google.auth.transport.requests.AuthorizedSession(credentials, refresh_status_codes=())
        http_client = functools.partial(_OriginHTTPClient, base_url=base_url)
        self._gspread = gspread.Client(auth=credentials, session=session, http_client=http_client)
        self._gspread.set_timeout((CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        self._http: gspread.HTTPClient = self._gspread.http_client
        self._user_key = user_key
        self._limits = limits

    def close(self) -> None:
        self._http.session.close()

    def __enter__(self) -> SheetsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sheet(self, spreadsheet_id: str, sheet_id: int) -> SheetInfo:
        """The sheet (tab) with gid `sheet_id`: title and grid size (spreadsheets.get, properties only)."""
        params = {"fields": "sheets.properties"}
        answer = self._call("read", lambda: self._http.spreadsheets_get(spreadsheet_id, params=params))
        for sheet in answer.get("sheets", []):
            props = sheet.get("properties", {})
            if props.get("sheetId") == sheet_id:
                grid = props.get("gridProperties", {})
                return SheetInfo(
                    spreadsheet_id=spreadsheet_id,
                    sheet_id=sheet_id,
                    title=str(props.get("title", "")),
                    row_count=int(grid.get("rowCount", 0)),
                    column_count=int(grid.get("columnCount", 0)),
                )
        raise SheetsApiError("not_found", f"the sheet (gid {sheet_id}) no longer exists in the spreadsheet")

    def ensure_grid(self, info: SheetInfo, *, rows: int, columns: int) -> SheetInfo:
        """The sheet grown (spreadsheets.batchUpdate appendDimension, one write) to at least
        rows x columns: Google refuses writes outside the grid ("exceeds grid limits")."""
        requests_: list[dict[str, Any]] = []
        for dimension, have, want in (("ROWS", info.row_count, rows), ("COLUMNS", info.column_count, columns)):
            if want > have:
                append = {"sheetId": info.sheet_id, "dimension": dimension, "length": want - have}
                requests_.append({"appendDimension": append})
        if not requests_:
            return info
        body = {"requests": requests_}
        self._call("write", lambda: self._http.batch_update(info.spreadsheet_id, body))
        return replace(info, row_count=max(rows, info.row_count), column_count=max(columns, info.column_count))

    def read(self, spreadsheet_id: str, ranges: list[str]) -> list[list[list[str]]]:
        """Each range's values as shown (FORMATTED_VALUE), padded with "" to the range's shape
        (clipped to the grid), one values:batchGet per MAX_RANGES_PER_READ ranges."""
        out: list[list[list[str]]] = []
        params = {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}
        for start in range(0, len(ranges), MAX_RANGES_PER_READ):
            chunk = list(ranges[start : start + MAX_RANGES_PER_READ])
            answer = self._call("read", lambda c=chunk: self._http.values_batch_get(spreadsheet_id, c, dict(params)))
            value_ranges = answer.get("valueRanges", [])
            if len(value_ranges) != len(chunk):
                raise SheetsApiError("unavailable", "Google answered a different number of ranges than asked")
            out.extend(_padded(vr) for vr in value_ranges)
        return out

    def write(self, spreadsheet_id: str, updates: list[tuple[str, list[list[str]]]]) -> int:
        """Write each (range, rows) literally (valueInputOption RAW: "=1+1" stays text) with
        values:batchUpdate, bodies under MAX_WRITE_PAYLOAD_BYTES; returns the number of bodies
        (batchUpdate requests, not counting retries). A body retried after a 5xx or a timeout
        may have landed already: harmless, it writes the same values to the same cells."""
        sent = 0
        for data in _batches(updates):
            body = {"valueInputOption": "RAW", "data": data}
            self._call("write", lambda b=body: self._http.values_batch_update(spreadsheet_id, b))
            sent += 1
        return sent

    def _call(self, kind: Kind, send: Callable[[], T]) -> T:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            wait=_wait_s,
            stop=_stop,
            sleep=self._limits.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._limits.acquire(self._user_key, kind)
                    return self._send(send)
        except _Transient as exc:
            detail = f"Google Sheets is not answering ({exc}); the job will try again"
            raise SheetsApiError("unavailable", detail) from None
        raise SheetsApiError("unavailable")  # unreachable: tenacity either returns or raises

    @staticmethod
    def _send(send: Callable[[], T]) -> T:
        try:
            return send()
        except gspread.exceptions.APIError as exc:
            raise _classify(exc) from None
        except requests.RequestException as exc:
            raise _Transient(None, None, f"network error: {type(exc).__name__}") from None
