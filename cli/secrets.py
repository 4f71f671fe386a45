"""`tributary secrets ...`: keys for secrets at rest. Nothing here prints a stored secret."""

from __future__ import annotations

import typer

from cli.context import echo_json, services
from core.secrets import SecretBox, generate_key, init_keys_file, production_problems, rotate_stored_secrets
from core.settings import KEYS_FILE, get_settings

secrets_app = typer.Typer(help="Encryption keys for tokens at rest, and the keys production must set.",
                          no_args_is_help=True)


@secrets_app.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key (put it first in TRIBUTARY_SECRET_KEYS to rotate)."""
    typer.echo(generate_key())


@secrets_app.command("init")
def init_command() -> None:
    """Write fresh keys to ./var/keys.env unless it exists (the embedded demo's first run)."""
    written = init_keys_file(KEYS_FILE)
    typer.echo(f"{'wrote new keys to' if written else 'keeping the keys in'} {KEYS_FILE}")


@secrets_app.command("check")
def check_command() -> None:
    """Say whether serve/worker would start: every production key set and not a default."""
    problems = production_problems(get_settings())
    for problem in problems:
        typer.echo(f"missing: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo("ok: every production key is set")


@secrets_app.command("rotate")
def rotate_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-encrypt every stored secret under the newest key of TRIBUTARY_SECRET_KEYS."""
    svc = services()
    report = rotate_stored_secrets(svc.engine, SecretBox.from_settings(svc.settings))
    if as_json:
        echo_json(report)
    else:
        typer.echo(f"re-encrypted {report.values} secret(s) under the newest key ({report.were_plain} were plain text)")


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")
