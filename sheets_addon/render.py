"""JSON in and out of the add-on's backend: request bodies parsed into core's types (a bad field is
a 422 naming it), core's views rendered as the contract's objects, errors as problem+json."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from flask import Response, json

from core.errors import InvalidInput, TributaryError
from core.sheets.types import (
    OUTPUT_KINDS,
    JobRequest,
    JobView,
    OutputColumn,
    OutputSpec,
    PreviewView,
    SelectionView,
    SessionView,
    SheetRef,
)

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:tributary:problem:"  # the app's namespace (web/problems.py)
_SPREADSHEET_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_SHEET_NAME_CHARS = 100  # Google's limit on a sheet's title
MAX_CAP_CREDITS = 10**9
# Statuses the contract names for the client (InvalidInput is "unprocessable": the body parsed).
_STATUS = {InvalidInput: 422}


def json_response(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def problem(exc: TributaryError) -> Response:
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), exc.http_status)
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", type(exc).__name__)]
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + "-".join(words),
        "title": " ".join(words).capitalize(),
        "status": status,
        "detail": str(exc),
    }
    if exc.field:
        body["errors"] = [{"field": exc.field, "message": str(exc)}]
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _str(body: dict, key: str, field: str, *, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(field, "missing")
    if len(value) > limit:
        raise _bad(field, f"longer than {limit} characters")
    return value


def _int(value: Any, field: str, *, lo: int = 0, hi: int = 2**31 - 1, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(field, f"a whole number from {lo} to {hi}")
    return value


def sheet_ref(body: dict) -> SheetRef:
    sheet = body.get("sheet")
    if not isinstance(sheet, dict):
        raise _bad("sheet", "no selection: select the rows to enrich, header included")
    spreadsheet_id = _str(sheet, "spreadsheet_id", "sheet.spreadsheet_id", limit=128)
    if not _SPREADSHEET_ID.match(spreadsheet_id):
        raise _bad("sheet.spreadsheet_id", "not a spreadsheet id")
    range_a1 = sheet.get("range_a1")
    if not isinstance(range_a1, str) or not range_a1.strip():
        raise _bad("sheet.range_a1", "no selection: select the rows to enrich, header included")
    return SheetRef(
        spreadsheet_id=spreadsheet_id,
        sheet_id=_int(sheet.get("sheet_id"), "sheet.sheet_id"),  # type: ignore[arg-type]
        sheet_name=_str(sheet, "sheet_name", "sheet.sheet_name", limit=MAX_SHEET_NAME_CHARS),
        range_a1=range_a1[:64],
    )


def oauth_token(body: dict) -> str:
    token = body.get("oauth_token")
    if not isinstance(token, str) or not token.strip():
        raise _bad("oauth_token", "missing; the sidebar sends ScriptApp.getOAuthToken()")
    return token.strip()


def job_request(body: dict) -> JobRequest:
    mapping = body.get("mapping")
    if not isinstance(mapping, dict):
        raise _bad("mapping", "which column holds which field, e.g. {\"email\": \"C\"}")
    pairs = []
    for field, letter in mapping.items():
        if letter is None or letter == "":
            continue
        if not isinstance(letter, str):
            raise _bad(f"mapping.{field}", "a column letter")
        pairs.append((str(field), letter.strip().upper()))
    want = body.get("want") or {}
    if not isinstance(want, dict):
        raise _bad("want", "{\"email\": true, \"mobile\": false}")
    output = body.get("output") or {}
    if not isinstance(output, dict):
        raise _bad("output", "{\"mode\": \"new_columns\"} or {\"mode\": \"columns\", \"columns\": {...}}")
    columns = output.get("columns") or {}
    if not isinstance(columns, dict):
        raise _bad("output.columns", "{\"email\": \"G\", \"mobile\": \"H\", \"status\": \"I\"}")
    spec = OutputSpec(
        mode=str(output.get("mode") or "new_columns"),
        columns=tuple((k, str(v)) for k, v in columns.items() if k in OUTPUT_KINDS and isinstance(v, str)),
    )
    return JobRequest(
        sheet=sheet_ref(body),
        mapping=tuple(pairs),
        want_email=bool(want.get("email", True)),
        want_mobile=bool(want.get("mobile", False)),
        output=spec,
        max_credits=max_credits(body),
    )


def max_credits(body: dict) -> int | None:
    return _int(body.get("max_credits"), "max_credits", hi=MAX_CAP_CREDITS, optional=True)


def _outputs(outputs: dict[str, OutputColumn]) -> dict:
    return {kind: {"letter": col.letter, "header": col.header} for kind, col in outputs.items()}


def session(view: SessionView) -> dict:
    return {
        "email": view.email,
        "member_name": view.member_name,
        "team": {"id": view.team_id, "name": view.team_name},
        "role": view.role,
        "balance_credits": view.balance_credits,
    }


def selection(view: SelectionView, fields: tuple[str, ...]) -> dict:
    return {
        "header_row": view.header_row,
        "first_data_row": view.first_data_row,
        "last_data_row": view.last_data_row,
        "rows": view.rows,
        "max_rows": view.max_rows,
        "columns": [{"letter": c.letter, "header": c.header, "field": c.field} for c in view.columns],
        "fields": list(fields),
        "outputs": _outputs(view.outputs),
    }


def preview(view: PreviewView) -> dict:
    body = asdict(view)
    body["outputs"] = _outputs(view.outputs)
    return body


def job(view: JobView) -> dict:
    body = asdict(view)
    body["summary"] = asdict(view.summary) if view.summary is not None else None
    return body
