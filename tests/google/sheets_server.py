"""The Google Sheets API v4 on loopback: the REST calls the add-on makes, with Google's JSON shapes.

Endpoints (paths as on https://sheets.googleapis.com):
- `GET  /v4/spreadsheets/{id}` (`fields` mask: `sheets.properties`, `sheets(properties)`, `properties`,
  `spreadsheetId`; none = everything; `includeGridData` ignored);
- `GET  /v4/spreadsheets/{id}/values:batchGet?ranges=..&ranges=..&valueRenderOption=..`;
- `GET  /v4/spreadsheets/{id}/values/{range}`;
- `POST /v4/spreadsheets/{id}/values:batchUpdate` (`valueInputOption` RAW or USER_ENTERED; atomic);
- `POST /v4/spreadsheets/{id}:batchUpdate` with `appendDimension` requests (grow the grid).

Access: `grant(token, user_email, spreadsheet_ids)` (or `issue_token(user_email, ids)` for a fresh
one); a token never granted, `revoke`d or `expire`d
gets 401 UNAUTHENTICATED, a spreadsheet not granted 403 PERMISSION_DENIED, an unknown one 404.
Quota: `reads_per_minute` / `writes_per_minute` per user in a rolling minute (Google counts
spreadsheets.get and values reads as reads); past it 429 RESOURCE_EXHAUSTED with `Retry-After`.
`fail_next(500, 503, ...)` scripts failures; `FakeClock` lets a quota minute pass without waiting.
Every call is recorded (`calls`, `reads()`, `writes()`); `on_call(callback)` runs after each
call, before its answer is sent, so a test can change the sheet after the k-th write. Hooks that
change a sheet live on its handle (`SheetHandle`): set_rows, set_cell, sort_rows, insert_rows,
delete_rows, rename, delete; and read back with values, cell, formula.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.google import sheets_model as model
from tests.google.sheets_model import BadRange, Cell, Sheet, Spreadsheet

QUOTA_WINDOW_S = 60.0
ERRORS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


@dataclass(frozen=True)
class Call:
    """One request as the server saw it, and its answer's status."""

    method: str
    path: str
    kind: str  # "read" | "write" | "other"
    user: str | None
    spreadsheet_id: str | None
    ranges: tuple[str, ...]
    status: int
    value_input_option: str | None = None
    value_render_option: str | None = None
    body_bytes: int = 0
    at_s: float = field(default_factory=time.monotonic)


@dataclass
class Grant:
    user: str
    spreadsheet_ids: set[str]
    revoked: bool = False
    expired: bool = False


class ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": str(self), "status": ERRORS.get(self.status, "UNKNOWN")}}


class SheetHandle:
    """A test's hold on one sheet (tab): change it as a user would, read it back."""

    def __init__(self, server: SheetsServer, spreadsheet_id: str, sheet_id: int) -> None:
        self.server = server
        self.spreadsheet_id = spreadsheet_id
        self.sheet_id = sheet_id

    def _sheet(self) -> Sheet:
        return self.server.spreadsheet(self.spreadsheet_id).find(self.sheet_id)

    @property
    def title(self) -> str:
        with self.server.lock:
            return self._sheet().title

    @property
    def row_count(self) -> int:
        with self.server.lock:
            return self._sheet().row_count

    @property
    def column_count(self) -> int:
        with self.server.lock:
            return self._sheet().column_count

    def set_rows(self, rows: Sequence[Sequence[str]], start_row: int = 1, start_col: int = 1) -> None:
        """Type `rows` in from (start_row, start_col); a cell starting with '=' becomes a formula
        shown empty (as USER_ENTERED would). The grid grows to hold them."""
        with self.server.lock:
            sheet = self._sheet()
            sheet.row_count = max(sheet.row_count, start_row + len(rows) - 1)
            sheet.column_count = max(sheet.column_count, start_col + max((len(r) for r in rows), default=0) - 1)
            for r, line in enumerate(rows):
                for c, value in enumerate(line):
                    entered = model.as_entered(value, "USER_ENTERED" if str(value).startswith("=") else "RAW")
                    target = sheet.cell(start_row + r, start_col + c)
                    target.value, target.formula = entered.value, entered.formula  # type: ignore[union-attr]

    def set_cell(self, a1: str, value: str, *, formula: str | None = None) -> None:
        """Set one cell (`B7`) to show `value`, optionally as the result of `formula`."""
        with self.server.lock:
            rect = self.server.spreadsheet(self.spreadsheet_id).resolve(f"{model.sheet_prefix(self.title)}!{a1}")
            target = rect.sheet.cell(rect.top, rect.left)
            target.value, target.formula = value, formula

    def values(self, a1: str | None = None) -> list[list[str]]:
        """Shown values of `a1` (default: the used part of the sheet), a dense grid padded with ""."""
        with self.server.lock:
            sheet = self._sheet()
            if a1 is None:
                width = max((len(r) for r in sheet.rows), default=0)
                bottom = len(sheet.rows)
                a1 = f"A1:{model.column_to_letters(max(width, 1))}{max(bottom, 1)}"
            rect = self.server.spreadsheet(self.spreadsheet_id).resolve(f"{model.sheet_prefix(sheet.title)}!{a1}")
            columns = range(rect.left, rect.right + 1)
            return [
                [(c.value if (c := sheet.peek(row, col)) else "") for col in columns]
                for row in range(rect.top, rect.bottom + 1)
            ]

    def cell(self, a1: str) -> str:
        return self.values(a1)[0][0]

    def formula(self, a1: str) -> str | None:
        with self.server.lock:
            rect = self.server.spreadsheet(self.spreadsheet_id).resolve(f"{model.sheet_prefix(self.title)}!{a1}")
            found = rect.sheet.peek(rect.top, rect.left)
            return found.formula if found else None

    def sort_rows(
        self, by_column: str, start_row: int = 2, *, reverse: bool = False, end_row: int | None = None
    ) -> None:
        """Sort rows start_row..end_row (default: the last used row) by a column's shown value,
        stably, as Data > Sort range does (whole rows move, formulas with them)."""
        with self.server.lock:
            sheet = self._sheet()
            col = model.letters_to_column(by_column.upper())
            last = len(sheet.rows) if end_row is None else end_row
            sheet.cell(last, 1)  # make rows up to `last` exist
            block = sheet.rows[start_row - 1 : last]

            def key(line: list[Cell]) -> str:
                return line[col - 1].value if len(line) >= col else ""

            sheet.rows[start_row - 1 : last] = sorted(block, key=key, reverse=reverse)

    def insert_rows(self, before_row: int, count_: int = 1, values: Sequence[Sequence[str]] | None = None) -> None:
        """Insert empty rows before `before_row` (rows below move down, the grid grows), then
        optionally type `values` into them."""
        with self.server.lock:
            sheet = self._sheet()
            sheet.cell(before_row - 1, 1) if before_row > 1 else None
            sheet.rows[before_row - 1 : before_row - 1] = [[] for _ in range(count_)]
            sheet.row_count += count_
        if values:
            self.set_rows(values, start_row=before_row)

    def delete_rows(self, start_row: int, count_: int = 1) -> None:
        """Delete rows start_row..start_row+count_-1 (rows below move up, the grid shrinks)."""
        with self.server.lock:
            sheet = self._sheet()
            del sheet.rows[start_row - 1 : start_row - 1 + count_]
            sheet.row_count -= count_

    def rename(self, title: str) -> None:
        with self.server.lock:
            self._sheet().title = title

    def delete(self) -> None:
        """Delete this sheet (tab) from its spreadsheet."""
        self.server.delete_sheet(self.spreadsheet_id, self.sheet_id)


class _Quota:
    def __init__(self, per_minute: dict[str, int], clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.sent: dict[tuple[str, str], deque[float]] = {}

    def take(self, user: str, kind: str) -> None:
        limit = self.per_minute.get(kind)
        if limit is None:
            return
        now = self.clock()
        sent = self.sent.setdefault((user, kind), deque())
        while sent and sent[0] <= now - QUOTA_WINDOW_S:
            sent.popleft()
        if len(sent) >= limit:
            oldest = sent[0] if sent else now  # a limit of 0: never a slot
            retry_after = max(1, math.ceil(oldest + QUOTA_WINDOW_S - now))
            metric = "Read requests" if kind == "read" else "Write requests"
            raise ApiError(
                429,
                f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute per user' of "
                "service 'sheets.googleapis.com' for consumer 'project_number:000000000000'.",
                retry_after_s=retry_after,
            )
        sent.append(now)


class SheetsServer:
    """The Sheets API v4 on 127.0.0.1 (a free port); use as a context manager.

    `clock` drives the quota window, so a test can pass a fake clock that the client's sleeps
    advance (no real minute waited). `retry_after` off: 429s without the header, as Google often
    answers them."""

    def __init__(
        self,
        *,
        reads_per_minute: int | None = None,
        writes_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_after: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.grants: dict[str, Grant] = {}
        self.calls: list[Call] = []
        self.retry_after = retry_after
        limits = {"read": reads_per_minute, "write": writes_per_minute}
        self.quota = _Quota({k: v for k, v in limits.items() if v is not None}, clock)
        self._callbacks: list[Callable[[Call], None]] = []
        self._failures: deque[int] = deque()
        self._ids = count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SheetsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        """What TRIBUTARY_SHEETS_API_URL is set to (the origin; paths start with /v4/)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- spreadsheets, access, scripted failures --------------------------------------------

    def create_sheet(
        self,
        rows: Sequence[Sequence[str]] = (),
        *,
        spreadsheet_id: str | None = None,
        title: str = "Sheet1",
        sheet_id: int | None = None,
        row_count: int = model.DEFAULT_ROWS,
        column_count: int = model.DEFAULT_COLUMNS,
    ) -> SheetHandle:
        """A sheet holding `rows` from A1, in a new spreadsheet or added to `spreadsheet_id`."""
        with self.lock:
            spreadsheet_id = spreadsheet_id or f"sheet-{next(self._ids):04d}-{'x' * 20}"
            book = self.spreadsheets.setdefault(spreadsheet_id, Spreadsheet(spreadsheet_id, "Untitled spreadsheet"))
            gid = sheet_id if sheet_id is not None else (0 if not book.sheets else 1000 + next(self._ids))
            book.sheets.append(Sheet(gid, title, row_count, column_count))
        handle = SheetHandle(self, spreadsheet_id, gid)
        if rows:
            handle.set_rows(rows)
        return handle

    def spreadsheet(self, spreadsheet_id: str) -> Spreadsheet:
        return self.spreadsheets[spreadsheet_id]

    def delete_sheet(self, spreadsheet_id: str, sheet: str | int) -> None:
        with self.lock:
            book = self.spreadsheets[spreadsheet_id]
            book.sheets.remove(book.find(sheet))

    def grant(self, token: str, user_email: str, spreadsheet_ids: Sequence[str] | str) -> None:
        """`token` is `user_email`'s access token, with access to these spreadsheets."""
        ids = {spreadsheet_ids} if isinstance(spreadsheet_ids, str) else set(spreadsheet_ids)
        with self.lock:
            self.grants[token] = Grant(user_email, ids)

    def issue_token(self, user_email: str, spreadsheet_ids: Sequence[str] | str) -> str:
        """A fresh access token for `user_email` (what ScriptApp.getOAuthToken() would return), granted."""
        token = f"ya29.test-{next(self._ids)}-{user_email}"
        self.grant(token, user_email, spreadsheet_ids)
        return token

    def revoke(self, token: str) -> None:
        with self.lock:
            self.grants[token].revoked = True

    def expire(self, token: str) -> None:
        with self.lock:
            self.grants[token].expired = True

    def fail_next(self, *statuses: int) -> None:
        """The next requests (any kind, after auth) answer these statuses (500, 503, 429...) instead."""
        with self.lock:
            self._failures.extend(statuses)

    def on_call(self, callback: Callable[[Call], None]) -> None:
        """Run `callback(call)` after every call, before its answer is sent."""
        with self.lock:
            self._callbacks.append(callback)

    # ---- inspection ------------------------------------------------------------------------

    def reads(self, status: int | None = 200) -> list[Call]:
        return [c for c in list(self.calls) if c.kind == "read" and (status is None or c.status == status)]

    def writes(self, status: int | None = 200) -> list[Call]:
        return [c for c in list(self.calls) if c.kind == "write" and (status is None or c.status == status)]

    # ---- the API ---------------------------------------------------------------------------

    def _user(self, authorization: str | None) -> str:
        token = authorization[7:].strip() if authorization and authorization.startswith("Bearer ") else None
        grant = self.grants.get(token or "")
        if grant is None or grant.revoked or grant.expired:
            raise ApiError(401, UNAUTHENTICATED_MESSAGE)
        return grant.user

    def _book(self, authorization: str | None, spreadsheet_id: str) -> Spreadsheet:
        grant = self.grants[authorization[7:].strip()]  # type: ignore[index]
        book = self.spreadsheets.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        if spreadsheet_id not in grant.spreadsheet_ids:
            raise ApiError(403, "The caller does not have permission")
        return book

    def handle(self, request: _Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: (status, JSON body, extra headers); records it and runs callbacks."""
        status, body, headers, call = self._answer(request)
        for callback in list(self._callbacks):
            callback(call)
        return status, body, headers

    def _answer(self, request: _Request) -> tuple[int, dict[str, Any], dict[str, str], Call]:
        route = _route(request)
        user = None
        with self.lock:
            try:
                user = self._user(request.headers.get("authorization"))
                if route.kind in ("read", "write"):
                    self.quota.take(user, route.kind)
                if self._failures:
                    raise ApiError(self._failures.popleft(), "The service is currently unavailable.")
                book = self._book(request.headers.get("authorization"), route.spreadsheet_id)
                status, body, headers = 200, route.run(self, book), {}
            except ApiError as exc:
                status, body = exc.status, exc.body()
                headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s and self.retry_after else {}
            except BadRange as exc:
                status, body, headers = 400, ApiError(400, str(exc)).body(), {}
            call = Call(
                request.method, request.path, route.kind, user, route.spreadsheet_id, tuple(route.ranges), status,
                route.value_input_option, route.value_render_option, len(request.body),
            )
            self.calls.append(call)
        return status, body, headers, call


class FakeClock:
    """Monotonic time that moves only when slept on: give `time` to SheetsServer(clock=) and
    SheetsQuota(clock=), `sleep` to SheetsQuota(sleep=), and a minute of quota passes instantly."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now_s

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now_s += max(seconds, 0.0)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        return parsed

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


@dataclass
class _Route:
    kind: str
    spreadsheet_id: str | None
    run: Callable[[SheetsServer, Spreadsheet], dict[str, Any]]
    ranges: list[str] = field(default_factory=list)
    value_input_option: str | None = None
    value_render_option: str | None = None


def _not_found(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
    raise ApiError(404, "Method not found.")


_RENDER_OPTIONS = {"FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"}


def _render(request: _Request) -> str:
    render = request.param("valueRenderOption", "FORMATTED_VALUE") or "FORMATTED_VALUE"
    if render not in _RENDER_OPTIONS:
        raise ApiError(400, f"Invalid value at 'value_render_option' ({render})")
    if (request.param("majorDimension", "ROWS") or "ROWS") != "ROWS":
        raise ApiError(400, "this loopback server answers majorDimension=ROWS only")
    return render


def _spreadsheet_get(request: _Request) -> Callable[[SheetsServer, Spreadsheet], dict[str, Any]]:
    def run(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
        full = {
            "spreadsheetId": book.spreadsheet_id,
            "properties": {"title": book.title, "locale": "en_US", "timeZone": "Etc/GMT"},
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(book.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{book.spreadsheet_id}/edit",
        }
        mask = request.param("fields")
        if not mask:
            return full
        wanted = {part.strip().split("(")[0].split(".")[0] for part in mask.split(",")}
        unknown = wanted - set(full)
        if unknown:
            raise ApiError(400, f"Request contains an invalid argument: unknown fields {sorted(unknown)}")
        return {key: value for key, value in full.items() if key in wanted}

    return run


def _batch_get(request: _Request, ranges: list[str]) -> Callable[[SheetsServer, Spreadsheet], dict[str, Any]]:
    def run(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
        render = _render(request)
        if not ranges:
            raise ApiError(400, "Request must contain at least one range.")
        value_ranges = [model.read(book.resolve(r), render) for r in ranges]
        return {"spreadsheetId": book.spreadsheet_id, "valueRanges": value_ranges}

    return run


def _values_get(request: _Request, a1: str) -> Callable[[SheetsServer, Spreadsheet], dict[str, Any]]:
    def run(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
        return model.read(book.resolve(a1), _render(request))

    return run


def _batch_update(request: _Request) -> Callable[[SheetsServer, Spreadsheet], dict[str, Any]]:
    def run(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
        body = request.json()
        option = body.get("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, f"Invalid valueInputOption: {option or 'INPUT_VALUE_OPTION_UNSPECIFIED'}")
        planned = []
        for item in body.get("data") or []:  # all checked before anything is written: atomic
            if (item.get("majorDimension") or "ROWS") != "ROWS":
                raise ApiError(400, "this loopback server writes majorDimension=ROWS only")
            rect = book.resolve(str(item.get("range", "")))
            values = item.get("values") or []
            planned.append((rect, values, model.check_write(rect, values)))
        responses = []
        for rect, values, (height, width) in planned:
            model.write(rect, values, option)
            updated = model.Rect(rect.sheet, rect.top, rect.left, rect.top + max(height, 1) - 1,
                                 rect.left + max(width, 1) - 1, False)
            responses.append({
                "spreadsheetId": book.spreadsheet_id, "updatedRange": updated.a1(), "updatedRows": height,
                "updatedColumns": width, "updatedCells": sum(len(v) for v in values),
            })
        return {
            "spreadsheetId": book.spreadsheet_id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
            "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({p[0].sheet.sheet_id for p in planned}),
            "responses": responses,
        }

    return run


def _spreadsheet_batch_update(request: _Request) -> Callable[[SheetsServer, Spreadsheet], dict[str, Any]]:
    def run(server: SheetsServer, book: Spreadsheet) -> dict[str, Any]:
        replies = []
        for item in request.json().get("requests") or []:
            append = item.get("appendDimension")
            if not isinstance(append, dict):
                raise ApiError(400, f"this loopback server supports appendDimension only, not {sorted(item)}")
            try:
                sheet = book.find(int(append.get("sheetId", 0)))
            except KeyError:
                raise ApiError(400, f"No grid with id: {append.get('sheetId')}") from None
            length = int(append.get("length", 0))
            if length < 1:
                raise ApiError(400, "Invalid requests[0].appendDimension: length must be positive")
            if append.get("dimension") == "COLUMNS":
                sheet.column_count += length
            elif append.get("dimension") == "ROWS":
                sheet.row_count += length
            else:
                raise ApiError(400, "Invalid requests[0].appendDimension: dimension must be ROWS or COLUMNS")
            replies.append({})
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    return run


def _route(request: _Request) -> _Route:
    parts = request.path.split("/")
    if len(parts) < 4 or parts[:3] != ["", "v4", "spreadsheets"]:
        return _Route("other", None, _not_found)
    head, rest = unquote(parts[3]), [unquote(p) for p in parts[4:]]
    if request.method == "GET" and not rest and ":" not in head:
        return _Route("read", head, _spreadsheet_get(request))
    if request.method == "POST" and not rest and head.endswith(":batchUpdate"):
        return _Route("write", head.removesuffix(":batchUpdate"), _spreadsheet_batch_update(request))
    if request.method == "GET" and rest == ["values:batchGet"]:
        ranges = request.query.get("ranges", [])
        return _Route("read", head, _batch_get(request, ranges), ranges,
                      value_render_option=request.param("valueRenderOption", "FORMATTED_VALUE"))
    if request.method == "GET" and len(rest) >= 2 and rest[0] == "values":
        a1 = "/".join(rest[1:])
        return _Route("read", head, _values_get(request, a1), [a1],
                      value_render_option=request.param("valueRenderOption", "FORMATTED_VALUE"))
    if request.method == "POST" and rest == ["values:batchUpdate"]:
        try:
            data = json.loads(request.body or b"{}")
            ranges = [str(d.get("range")) for d in data.get("data") or []]
            option = data.get("valueInputOption")
        except (ValueError, AttributeError, TypeError):
            ranges, option = [], None
        return _Route("write", head, _batch_update(request), ranges, value_input_option=option)
    return _Route("other", head, _not_found)


def _handler(server: SheetsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; without TCP_NODELAY each answer on a kept-alive
        # connection waits out the client's delayed ACK (~40 ms).
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = _Request(
                self.command, split.path, parse_qs(split.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()}, body
            )
            status, answer, headers = server.handle(request)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 (http.server's naming)

    return Handler


@contextmanager
def sheets_server(**options: Any) -> Iterator[SheetsServer]:
    """`with sheets_server(writes_per_minute=60) as server:` — a started SheetsServer."""
    with SheetsServer(**options) as server:
        yield server
