"""`tributary send ...` and `tributary relay ...`: send an email through the team's SMTP relay.

Secrets are never taken on the command line nor printed: the relay names the environment variable
holding its password (`--password-env VAR`), read when sending.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import echo_json, services
from core.errors import InvalidInput

relay_app = typer.Typer(help="SMTP relays that members send through.", no_args_is_help=True)


def send(
    team: str,
    member: str,
    to: str = typer.Argument(..., metavar="TO", help="Recipient address."),
    subject: str = typer.Option(..., "--subject", help="Subject line."),
    body_file: Path = typer.Option(..., "--body-file", help="Plain-text body (UTF-8)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send one email through the relay and record it (only such sends count for bounce refunds)."""
    try:
        body = body_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--body-file {body_file}: cannot read it ({exc})") from None
    receipt = services().sending.send(team, member, to, subject=subject, body=body)
    if as_json:
        echo_json(receipt)
    else:
        bought = f", data request {receipt.data_request_id}" if receipt.data_request_id else ""
        typer.echo(f"sent {receipt.message_id} to {receipt.recipient} via {receipt.relay_host}{bought}")


@relay_app.command("set")
def relay_set(
    team: str,
    host: str = typer.Option(..., "--host"),
    port: int = typer.Option(587, "--port"),
    user: str | None = typer.Option(None, "--user"),
    password_env: str | None = typer.Option(None, "--password-env", help="Name of the variable holding the password."),
    starttls: bool = typer.Option(True, "--starttls/--no-starttls"),
    from_address: str | None = typer.Option(None, "--from", help="From address (default: the member's email)."),
    member: str | None = typer.Option(None, "--member", help="Set a relay for this member only."),
) -> None:
    """Set the team's (or one member's) relay."""
    info = services().relays.set_relay(
        team,
        host=host,
        port=port,
        username=user,
        password_env=password_env,
        starttls=starttls,
        from_address=from_address,
        member_ref=member,
    )
    typer.echo(_describe(info))


@relay_app.command("show")
def relay_show(team: str) -> None:
    """Show the team's relays (never the password: only which variable holds it, and whether it is set)."""
    relays = services().relays.relays(team)
    if not relays:
        typer.echo(f"no relay set for team {team}: sending is off until `tributary relay set {team} --host H` sets one")
    for info in relays:
        typer.echo(_describe(info))


def _describe(info) -> str:
    scope = f"member {info.member_id}" if info.member_id else "team"
    state = "set" if info.password_is_set else "NOT SET"
    login = f" user {info.username} (password from ${info.password_env}: {state})"
    return (
        f"{scope}: {info.host}:{info.port} {'STARTTLS' if info.starttls else 'no STARTTLS'}"
        + (login if info.username else " no login")
        + (f" from {info.from_address}" if info.from_address else "")
    )


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.add_typer(relay_app, name="relay")
