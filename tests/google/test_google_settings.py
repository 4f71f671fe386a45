"""The Google settings: Google's endpoints by default, client ids as a comma-separated list."""

from __future__ import annotations

import pytest

from core.settings import InvalidSetting, Settings, load_settings
from sheets_addon.sheets_api import SheetsQuota


def test_defaults_are_googles_endpoints_and_quota() -> None:
    settings = Settings(_env_file=None)
    assert settings.google_certs_url == "https://www.googleapis.com/oauth2/v1/certs"
    assert settings.sheets_api_url == "https://sheets.googleapis.com"
    assert (settings.sheets_reads_per_minute, settings.sheets_writes_per_minute, settings.sheets_max_rows) == (
        60,
        60,
        10000,
    )
    assert settings.google_client_id_list() == []


def test_client_ids_and_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = " 1-a.apps.googleusercontent.com, ,2-b.apps.googleusercontent.com "
    monkeypatch.setenv("TRIBUTARY_GOOGLE_CLIENT_IDS", ids)
    monkeypatch.setenv("TRIBUTARY_SHEETS_WRITES_PER_MINUTE", "30")
    settings = Settings(_env_file=None)
    assert settings.google_client_id_list() == ["1-a.apps.googleusercontent.com", "2-b.apps.googleusercontent.com"]
    assert SheetsQuota.from_settings(settings).limits == {"read": 60, "write": 30}


def test_a_zero_quota_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_SHEETS_READS_PER_MINUTE", "0")
    with pytest.raises(InvalidSetting, match="TRIBUTARY_SHEETS_READS_PER_MINUTE"):
        load_settings()
