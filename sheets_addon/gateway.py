"""core's SheetGateway over the Sheets API client: one spreadsheet, one member's token, Google's
errors as core's SheetUnavailable (core never imports gspread)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from core.settings import Settings
from core.sheets.types import OpenSheet, SheetUnavailable
from sheets_addon.sheets_api import SheetsApiError, SheetsClient, SheetsQuota

T = TypeVar("T")


class ClientSheet:
    def __init__(self, client: SheetsClient, spreadsheet_id: str) -> None:
        self.client = client
        self.spreadsheet_id = spreadsheet_id

    def sheet_title(self, sheet_id: int) -> str:
        return _translated(lambda: self.client.sheet(self.spreadsheet_id, sheet_id).title)

    def ensure_columns(self, sheet_id: int, columns: int) -> str:
        def grow() -> str:
            info = self.client.sheet(self.spreadsheet_id, sheet_id)
            return self.client.ensure_grid(info, rows=info.row_count, columns=columns).title

        return _translated(grow)

    def read(self, ranges: list[str]) -> list[list[list[str]]]:
        return _translated(lambda: self.client.read(self.spreadsheet_id, ranges))

    def write(self, updates: list[tuple[str, list[list[str]]]]) -> int:
        return _translated(lambda: self.client.write(self.spreadsheet_id, updates))

    def close(self) -> None:
        self.client.close()


def _translated(call: Callable[[], T]) -> T:
    try:
        return call()
    except SheetsApiError as exc:
        raise SheetUnavailable(str(exc), exc.kind) from None


def sheet_opener(settings: Settings, quota: SheetsQuota | None = None) -> OpenSheet:
    """Open spreadsheets with the Sheets API from settings, all users of this process sharing one
    per-user quota."""
    quota = quota or SheetsQuota.from_settings(settings)

    def open_sheet(token: str, spreadsheet_id: str, user_key: str) -> ClientSheet:
        client = SheetsClient(token, base_url=settings.sheets_api_url, user_key=user_key, limits=quota)
        return ClientSheet(client, spreadsheet_id)

    return open_sheet
