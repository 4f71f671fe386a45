"""`tributary crm ...` as a subprocess against a real database and the loopback HubSpot: connect (token
from an environment variable), fields, sync (dry run and real), status, disconnect, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.context import services
from cli.main import app
from core.secrets import generate_key
from core.settings import get_settings
from storage.db import make_engine
from storage.models import CrmConnection
from tests.crm import world as cw
from tests.crm.hubspot_server import HubSpotServer

runner = CliRunner()


@pytest.fixture
def server():
    with HubSpotServer(cw.TOKEN) as s:
        yield s


def test_crm_commands(db_url: str, server: HubSpotServer, tmp_path, monkeypatch) -> None:
    world = cw.build(db_url, server, 6)
    env = {
        "TRIBUTARY_DATABASE_URL": db_url, "TRIBUTARY_SECRET_KEYS": generate_key(),
        "TRIBUTARY_HUBSPOT_API_URL": server.url, "HUBSPOT_TOKEN": cw.TOKEN, "TRIBUTARY_DEVELOPMENT": "1",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    services.cache_clear()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["crm", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    try:
        assert "connected hubspot" in run("connect", world.team, "hubspot", "--token-env", "HUBSPOT_TOKEN")
        assert "title         -> job_title_x" in run("fields", world.team, "title=job_title_x")
        dry = json.loads(run("sync", world.team, "--dry-run", "--max-credits", "3", "--json"))
        assert dry["dry_run"] and dry["credits_charged"] == 0 and dry["max_credits"] <= 3
        done = json.loads(run("sync", world.team, "--json"))
        assert done["pulled"]["linked"] == 6 and "job_title_x" in server.properties
        assert "6 CRM contacts known, 6 linked" in run("status", world.team)
        with make_engine(db_url).connect() as conn:
            stored = conn.execute(select(CrmConnection.__table__.c.token_encrypted)).scalar_one()
        assert cw.TOKEN not in stored  # encrypted at rest
        assert "disconnected" in run("disconnect", world.team)
    finally:
        get_settings.cache_clear()
        services.cache_clear()
    assert server.contacts[world.ids[1]]["job_title_x"] == "Engineer"


def test_a_missing_token_variable_is_one_line_exit_2(tmp_path) -> None:
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": f"sqlite:///{tmp_path}/t.db"}
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "crm", "connect", "acme", "hubspot", "--token-env", "NOT_SET_ANYWHERE"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "NOT_SET_ANYWHERE is not set" in proc.stderr and "Traceback" not in proc.stderr
