"""Alembic environment: the URL comes from the caller (storage.migrate) or TRIBUTARY_DATABASE_URL."""

import os

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TRIBUTARY_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set TRIBUTARY_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables instead. A rebuild
    # drops a table other tables reference, which SQLite refuses while foreign keys are enforced
    # (even deferred), so they are off during the migration (only possible outside a transaction)
    # and every reference is checked before it commits.
    sqlite_fk_off = connection.dialect.name == "sqlite" and not connection.in_transaction()
    if sqlite_fk_off:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite_fk_off:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys (table, rowid, parent, fk): {broken}")
        if connection.in_transaction():
            connection.commit()
    finally:
        if sqlite_fk_off:
            if connection.in_transaction():
                connection.rollback()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
