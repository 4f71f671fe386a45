"""`tributary api-keys create|list|revoke`: REST API keys of a team's members."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cli.context import echo_json, services

api_keys_app = typer.Typer(help="REST API keys (one per member and name; secret shown once).", no_args_is_help=True)


@api_keys_app.command("create")
def create(
    team: str,
    member: str = typer.Option(..., "--member", help="Email of the member the key acts as."),
    name: str = typer.Option(..., "--name", help="What the key is for, e.g. 'hubspot-sync'."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key. Its secret is printed once: it is stored only as a SHA-256 hash."""
    info, secret = services().api.keys.create(team, member, name)
    if as_json:
        echo_json({"prefix": info.prefix, "name": info.name, "member": info.member_email, "secret": secret})
        return
    typer.echo(f"API key {info.prefix} ({info.name}) for {info.member_email}; the secret, shown only now:")
    typer.echo(secret)


@api_keys_app.command("list")
def list_keys(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A team's API keys: prefix, member, name, created, last used, revoked (never the secret)."""
    keys = services().api.keys.list(team)
    if as_json:
        for key in keys:
            echo_json(key)
        return
    table = Table("prefix", "name", "member", "created", "revoked")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        table.add_row(k.prefix, k.name, k.member_email, k.created_at.isoformat(timespec="seconds"), revoked)
    Console().print(table)


@api_keys_app.command("revoke")
def revoke(team: str, prefix: str) -> None:
    """Revoke a key by its prefix (trb_...): it stops working at once."""
    info = services().api.keys.revoke(team, prefix)
    typer.echo(f"API key {info.prefix} ({info.name}) revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(api_keys_app, name="api-keys")
