"""Shared fixtures. Every storage and ledger test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TRIBUTARY_TEST_DATABASE_URL (CI always sets it). Each test gets a database of
its own, cloned from a migrated template (`CREATE DATABASE ... TEMPLATE`), so tests are isolated
and the migrations are what built the schema.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.migrate import upgrade

PG_URL = os.environ.get("TRIBUTARY_TEST_DATABASE_URL")
PG_SKIP_REASON = "PostgreSQL not configured: set TRIBUTARY_TEST_DATABASE_URL to run the PostgreSQL cases"
BACKENDS = ["sqlite", "postgresql"]
REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")
REDIS_SKIP_REASON = "Redis not configured: set TRIBUTARY_TEST_REDIS_URL to run the Redis queue cases"


def _pg_url_for(database: str) -> str:
    assert PG_URL is not None
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _pg_admin() -> psycopg.Connection:
    assert PG_URL is not None
    return psycopg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(False), autocommit=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Says which servers the backend cases run against, and in capitals which are skipped."""
    if PG_URL:
        lines = [f"tributary: PostgreSQL cases run against {make_url(PG_URL).render_as_string()}"]
    else:
        lines = [f"tributary: *** {PG_SKIP_REASON}; those cases are SKIPPED ***"]
    if REDIS_URL:
        lines.append(f"tributary: Redis cases run against {make_url(REDIS_URL).render_as_string()}")
    else:
        lines.append(f"tributary: *** {REDIS_SKIP_REASON}; those cases are SKIPPED ***")
    return lines


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    name = f"trib_tmpl_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade(_pg_url_for(name))
    yield name
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database of the parametrised backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tributary.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"trib_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield _pg_url_for(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
