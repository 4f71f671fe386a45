from sqlalchemy import Engine, inspect, select
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import read_transaction
from storage.migrate import current_revision, head_revision
from storage.models import Plan


def test_migrations_build_every_table_and_reach_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    missing = set(SQLModel.metadata.tables) - tables
    assert not missing, f"tables the models declare but no migration creates: {missing}"


def test_builtin_plans_are_seeded_by_migration(engine: Engine) -> None:
    with read_transaction(engine) as conn:
        rows = conn.execute(select(Plan.name, Plan.monthly_credits).order_by(Plan.monthly_credits)).all()
    assert [tuple(r) for r in rows] == [("free", 100), ("basic", 1000), ("professional", 5000)]


def test_models_and_migrations_agree(engine: Engine) -> None:
    """A model change without its migration (or the reverse) fails here, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"schema drift between storage/models and storage/migrations: {diff}"


def test_the_history_is_linear_and_downgrades_cleanly(db_url: str, engine: Engine) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    config = alembic_config(db_url)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1, "migrations must form one line"
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert current_revision(engine) == head_revision()
