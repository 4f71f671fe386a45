"""`tributary mailbox ...`: connect, sync, mark private, opt out, disconnect members' mailboxes.

The password is never taken on the command line: `--password-env VAR` names the variable holding
it, read once at connect time and stored encrypted (TRIBUTARY_SECRET_KEYS).
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.context import echo_json, services
from core.actors import Actor
from core.errors import InvalidInput
from core.mailboxes.imap import ImapAccount

mailbox_app = typer.Typer(
    help="Connected mailboxes: business contact facts from headers, signatures and invitations.",
    no_args_is_help=True,
)


@mailbox_app.command("connect")
def connect(
    team: str,
    member: str,
    host: str = typer.Option(..., "--host", help="IMAP server."),
    port: int = typer.Option(993, "--port"),
    user: str = typer.Option(..., "--user", help="IMAP login."),
    password_env: str = typer.Option(..., "--password-env", help="Name of the variable holding the password."),
    starttls: bool = typer.Option(False, "--starttls", help="STARTTLS on a plain port (e.g. 143)."),
    use_ssl: bool = typer.Option(False, "--ssl", help="Implicit TLS (the default)."),
    plain_loopback: bool = typer.Option(False, "--plain-loopback", help="No TLS; allowed only to a loopback host."),
    folder: str = typer.Option("INBOX", "--folder"),
) -> None:
    """Connect a member's mailbox (read-only; the password stored encrypted)."""
    if starttls + use_ssl + plain_loopback > 1:
        raise InvalidInput("--starttls, --ssl and --plain-loopback: choose one")
    security = "starttls" if starttls else "plain" if plain_loopback else "ssl"
    password = os.environ.get(password_env)
    if not password:
        raise InvalidInput(f"--password-env: the variable {password_env!r} is not set")
    account = ImapAccount(host, port, security, user, password, folder)
    info = services().mailboxes.connect(Actor.operator(), team, member, account)
    typer.echo(f"connected {info.member_email}: {info.username} at {info.host}:{info.port} ({info.security})")


@mailbox_app.command("sync")
def sync(team: str, member: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Read the mailbox's new messages and contribute the business contact facts they name."""
    svc = services()
    svc.mailboxes.mailbox(team, member)  # a clear error before any progress bar
    columns = (TextColumn("messages"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
        task = bar.add_task("sync", total=None)
        result = svc.mailbox_sync().sync(team, member, progress=lambda done, total: bar.update(task, completed=done,
                                                                                               total=total))
    if as_json:
        echo_json(result)
        return
    typer.echo(
        f"{result.messages} messages, {result.people} business people: {result.corroborated} confirmed shared data, "
        f"{result.shared} newly shared, {result.candidates} kept private until verified, {result.duplicates} known; "
        f"skipped {result.skipped_personal} personal and {result.skipped_private} private addresses"
        + ("" if result.contributed else " (opted out: nothing stored)")
    )


@mailbox_app.command("private")
def private(
    team: str,
    member: str,
    action: str = typer.Argument(..., metavar="add|remove"),
    value: str = typer.Argument(..., help="An email address or a domain."),
) -> None:
    """Mark an address or domain private (never read from this mailbox), or unmark it."""
    boxes = services().mailboxes
    if action == "add":
        typer.echo(f"private: {boxes.add_private(Actor.operator(), team, member, value)}")
    elif action == "remove":
        removed = boxes.remove_private(Actor.operator(), team, member, value)
        typer.echo(f"{'removed' if removed else 'was not private'}: {value}")
    else:
        raise InvalidInput(f"action: {action!r} is not add or remove")


@mailbox_app.command("contribute")
def contribute(team: str, member: str, on: bool = typer.Option(..., "--on/--off")) -> None:
    """The member's own opt-out: --off keeps everything from this mailbox out of the contributor network."""
    info = services().mailboxes.set_contribute(Actor.operator(), team, member, on)
    typer.echo(f"{info.member_email}: contributes {'on' if info.contribute else 'off'}")


@mailbox_app.command("disconnect")
def disconnect(team: str, member: str) -> None:
    """Disconnect and remove what only this mailbox supplied to the team's private records."""
    done = services().mailboxes.disconnect(Actor.operator(), team, member)
    typer.echo(
        f"disconnected: {done.candidates_deleted} private records removed, {done.candidates_trimmed} trimmed"
    )


@mailbox_app.command("status")
def status(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The team's connected mailboxes (never a password)."""
    boxes = services().mailboxes.status(Actor.operator(), team)
    if as_json:
        echo_json(boxes)
        return
    if not boxes:
        typer.echo(f"no mailbox connected in team {team}")
    for b in boxes:
        synced = b.last_synced_at.isoformat(timespec="seconds") if b.last_synced_at else "never"
        typer.echo(
            f"{b.member_email}: {b.username} at {b.host}:{b.port} ({b.security}), {b.messages_read} messages read, "
            f"last sync {synced}, contributes {'on' if b.contribute else 'off'}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(mailbox_app, name="mailbox")
