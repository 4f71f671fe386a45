"""Rate limits shared by web processes (two apps over one database, or one Redis), and the
`tributary api-keys` commands end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import update

from core.services import Services
from core.settings import Settings
from storage.models import Plan
from tests.api.conftest import ApiWorld, make_world
from tests.rate_clock import pin_rate_window
from web.app import create_app

REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")


def _limit(services: Services, per_minute: int) -> None:
    with services.engine.begin() as conn:
        conn.execute(update(Plan.__table__).values(api_requests_per_minute=per_minute))


def _two_processes_share_one_budget(db_url: str, world: ApiWorld, **settings) -> None:
    _limit(world.services, 4)
    second = Services.from_settings(Settings(database_url=db_url, **settings))
    pin_rate_window(world.services, second)
    apps = [create_app(world.services).test_client(), create_app(second).test_client()]
    headers = {"X-Api-Key": world.key}
    codes = [apps[i % 2].get("/api/v1/credits", headers=headers).status_code for i in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]
    second.engine.dispose()


def test_the_database_counts_requests_for_every_process(db_url: str) -> None:
    world = make_world(db_url)
    _two_processes_share_one_budget(db_url, world)
    world.services.engine.dispose()


@pytest.mark.skipif(not REDIS_URL, reason="TRIBUTARY_TEST_REDIS_URL not set")
def test_redis_counts_requests_for_every_process(db_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"  # this test's own keys
    settings = {"redis_url": REDIS_URL, "rate_limit_redis_prefix": prefix}
    world = make_world(db_url, **settings)
    _two_processes_share_one_budget(db_url, world, **settings)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(prefix + "*")
    assert keys and all(0 < client.ttl(k) <= 120 for k in keys)
    client.delete(*keys)
    world.services.engine.dispose()


def test_api_keys_commands(db_url: str, tmp_path) -> None:
    world = make_world(db_url)
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "api-keys", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    created = json.loads(run("create", "acme", "--member", "admin@acme.test", "--name", "crm-sync", "--json").stdout)
    secret = created["secret"]
    assert secret.startswith(created["prefix"] + "_") and created["member"] == "admin@acme.test"
    client = create_app(world.services).test_client()
    assert client.get("/api/v1/credits", headers={"X-Api-Key": secret}).status_code == 200
    listed = run("list", "acme").stdout
    assert created["prefix"] in listed and secret not in listed
    assert "revoked" in run("revoke", "acme", created["prefix"]).stdout
    assert client.get("/api/v1/credits", headers={"X-Api-Key": secret}).status_code == 401
    bad = run("create", "acme", "--member", "nobody@acme.test", "--name", "x", ok=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nobody@acme.test" in bad.stderr
    unknown = run("revoke", "acme", "trb_00000000", ok=False)
    assert unknown.returncode == 2 and "trb_00000000" in unknown.stderr
    world.services.engine.dispose()
