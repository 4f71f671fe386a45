"""`tributary bot ...` (run the Slack bot in Socket Mode, deliver notices and digests) and
`tributary slack ...` (connect a workspace to a team, make a one-time connect code, link a Slack user)."""

from __future__ import annotations

import time

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from cli.context import echo_json, services
from storage.timeutil import utcnow

bot_app = typer.Typer(help="The Slack bot: Socket Mode, refund notices, admin digests.")
slack_app = typer.Typer(help="Slack workspaces and users.", no_args_is_help=True)


@bot_app.callback(invoke_without_command=True)
def bot_main(
    ctx: typer.Context,
    socket_mode: bool = typer.Option(False, "--socket-mode", help="Connect to Slack over a WebSocket (no public URL)."),
) -> None:
    """Run the bot in Socket Mode: needs TRIBUTARY_SLACK_BOT_TOKEN and TRIBUTARY_SLACK_APP_TOKEN (xapp-...)."""
    if ctx.invoked_subcommand is not None:
        return
    if not socket_mode:
        typer.echo(ctx.get_help())
        return
    from bot.socket_mode import socket_mode_handler

    handler = socket_mode_handler(services())
    typer.echo("Tributary bot connected to Slack in Socket Mode (Ctrl-C stops it)")
    handler.start()


@bot_app.command("deliver-notices")
def deliver_notices(
    loop: bool = typer.Option(False, "--loop", help="Keep delivering every --interval-s seconds."),
    interval_s: float = typer.Option(30.0, "--interval-s", min=1.0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send pending refund notices as Slack DMs; failures are retried later with backoff."""
    from bot.notices import deliver_notices as deliver

    svc = services()
    outbox = svc.outbox
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True, disable=as_json) as progress:
        task = progress.add_task("delivering refund notices…")
        while True:
            report = deliver(outbox, svc, svc.settings, limit=svc.settings.slack_notice_batch)
            progress.update(task, description=f"delivered {report.delivered}, failed {report.failed}")
            if as_json:
                echo_json(report)
            elif report.delivered or report.failed or not loop:
                typer.echo(f"refund notices: {report.delivered} delivered, {report.failed} to retry")
                for error in report.errors:
                    typer.echo(f"  {error}", err=True)
            if not loop:
                return
            time.sleep(interval_s)


@bot_app.command("deliver-digests")
def deliver_digests() -> None:
    """Send every admin digest that is due now (daily or weekly, as each admin chose)."""
    from bot.digests import digest_deliverer

    svc = services()
    sent = svc.digest_deliveries.send_due_digests(utcnow(), digest_deliverer(svc, svc.settings))
    typer.echo(f"digests delivered: {sent}")


@slack_app.command("connect")
def slack_connect(team: str, slack_team_id: str) -> None:
    """Connect a Slack workspace (its team id, T…) to a Tributary team."""
    link = services().identities.connect(slack_team_id, team)
    typer.echo(f"Slack workspace {link.slack_team_id} is connected to team {link.team.name}")


@slack_app.command("connect-code")
def slack_connect_code(team: str) -> None:
    """Print a one-time code (15 minutes) that an admin types in Slack: `/tributary connect CODE`."""
    code = services().identities.create_connect_code(team)
    expires = code.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    typer.echo(f"In the Slack workspace, run: /tributary connect {code.code}")
    typer.echo(f"(team {code.team.name}; single use; expires {expires})")


@slack_app.command("link")
def slack_link(team: str, email: str, slack_user_id: str) -> None:
    """Record that a Slack user (U…) is the member with this email."""
    svc = services()
    member = svc.identities.link(svc.accounts.team(team).id, email, slack_user_id)
    typer.echo(f"Slack user {slack_user_id} is now {member.email} in team {team}")


def register(app: typer.Typer) -> None:
    app.add_typer(bot_app, name="bot")
    app.add_typer(slack_app, name="slack")
