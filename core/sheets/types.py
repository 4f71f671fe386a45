"""What the Sheets add-on's core takes and gives: the sheet, a job request, the views, and the
`SheetGateway` through which it reads and writes a spreadsheet (the front end supplies it; core never
imports a Google library)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import TributaryError

OUTPUT_KINDS = ("email", "mobile", "status")
# Fields a column of the sheet can be mapped to (the sidebar's choices).
MAPPABLE_FIELDS = ("email", "linkedin_url", "first_name", "last_name", "full_name", "company", "domain")


class SheetUnavailable(TributaryError):
    """The Sheets API refused or failed: `kind` is unauthorized (token expired or revoked), forbidden,
    not_found (the spreadsheet or sheet is gone), bad_request or unavailable (try again later)."""

    http_status = 502

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
        if kind in ("unauthorized", "forbidden", "not_found"):
            self.http_status = {"unauthorized": 401, "forbidden": 403, "not_found": 404}[kind]


class SheetGateway(Protocol):
    """One spreadsheet, opened with one member's OAuth access token."""

    def sheet_title(self, sheet_id: int) -> str: ...  # NotFound kind when the sheet is gone

    def ensure_columns(self, sheet_id: int, columns: int) -> str: ...  # the grid grown; the sheet's title

    def read(self, ranges: list[str]) -> list[list[list[str]]]: ...  # values:batchGet, formatted values

    def write(self, updates: list[tuple[str, list[list[str]]]]) -> int: ...  # values:batchUpdate RAW; requests

    def close(self) -> None: ...


# (access token, spreadsheet id, user key) -> a gateway.
OpenSheet = Callable[[str, str, str], SheetGateway]


@dataclass(frozen=True)
class SheetRef:
    spreadsheet_id: str
    sheet_id: int
    sheet_name: str
    range_a1: str


@dataclass(frozen=True)
class OutputSpec:
    mode: str = "new_columns"  # or "columns": the letters below
    columns: tuple[tuple[str, str], ...] = ()  # (kind, letter)


@dataclass(frozen=True)
class JobRequest:
    sheet: SheetRef
    mapping: tuple[tuple[str, str], ...]  # (field, letter)
    want_email: bool = True
    want_mobile: bool = False
    output: OutputSpec = field(default_factory=OutputSpec)
    max_credits: int | None = None


@dataclass(frozen=True)
class ColumnView:
    letter: str
    header: str
    field: str | None


@dataclass(frozen=True)
class OutputColumn:
    letter: str
    header: str


@dataclass(frozen=True)
class SelectionView:
    header_row: int
    first_data_row: int
    last_data_row: int
    rows: int
    max_rows: int
    columns: tuple[ColumnView, ...]
    outputs: dict[str, OutputColumn]


@dataclass(frozen=True)
class PreviewView:
    rows: int
    rows_with_identifier: int
    rows_without_identifier: int
    max_credits: int
    free_rows: int
    balance_credits: int
    cap_credits: int | None
    affordable: bool
    outputs: dict[str, OutputColumn]


@dataclass(frozen=True)
class JobSummary:
    found: int = 0
    not_found: int = 0
    free: int = 0
    skipped: int = 0
    not_enriched: int = 0
    changed: int = 0
    kept: int = 0


@dataclass(frozen=True)
class JobView:
    job_id: int
    status: str
    rows_total: int
    rows_done: int
    rows_written: int
    rows_waiting: int
    credits_spent: int
    percent: int
    message: str | None
    summary: JobSummary | None
    retryable_rows: int


@dataclass(frozen=True)
class SessionView:
    email: str
    member_name: str
    team_id: int
    team_name: str
    role: str
    balance_credits: int
