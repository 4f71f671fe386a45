"""`tributary db ...`: schema migrations."""

from __future__ import annotations

import typer

from cli.context import services
from storage.migrate import current_revision, head_revision, upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("heads", help="Target revision.")) -> None:
    """Apply migrations (the only way the schema is created or changed)."""
    svc = services()
    upgrade(svc.settings.database_url, revision)
    typer.echo(f"database at revision {current_revision(svc.engine)}")


@db_app.command("status")
def db_status() -> None:
    """Show the current and the latest revision."""
    current = current_revision(services().engine)
    head = head_revision()
    typer.echo(f"current: {current or '(empty database)'}\nlatest:  {head}")
    if current != head:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
