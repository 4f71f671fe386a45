"""`tributary waterfall ...` end to end, as a subprocess against a real database."""

import json
import os
import subprocess
import sys

import pytest

PROVIDERS = json.dumps(
    [{"name": "hunter", "base_url": "http://127.0.0.1:9", "api_key": "k", "cost_per_hit_usd": "0.049"}]
)


@pytest.fixture
def tributary(db_url, tmp_path):
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url, "TRIBUTARY_PROVIDERS": PROVIDERS}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_show_set_and_refuse(tributary) -> None:
    assert tributary("teams", "create", "acme").returncode == 0
    assert tributary("waterfall", "sources").stdout.split() == ["database", "pattern", "hunter"]
    shown = tributary("waterfall", "show", "acme")
    assert "email: database" in shown.stdout and "default" in shown.stdout
    done = tributary(
        "waterfall", "set", "acme", "--email", "database,pattern,hunter", "--phone", "database", "--validate"
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(tributary("waterfall", "show", "acme", "--json").stdout)
    assert plan["email_sources"] == ["database", "pattern", "hunter"] and plan["validate_email"] is True
    bad = tributary("waterfall", "set", "acme", "--email", "database,clearbit")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: waterfall email sources: unknown source 'clearbit'; registered: database, pattern, hunter"
    )
    assert tributary("waterfall", "calls", "acme", "--json").stdout == ""
