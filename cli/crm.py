"""`tributary crm ...`: connect a team's CRM, choose the pushed fields, sync, status, disconnect."""

from __future__ import annotations

import os

import typer
from rich.console import Console

from cli.context import echo_json, services
from cli.enrich import progress_bar
from core.crm.fields import PushField, parse_assignments
from core.crm.service import CrmStatus, SyncProgress, SyncSummary
from core.errors import InvalidInput

crm_app = typer.Typer(help="CRM sync (HubSpot): connect, fields, sync, status, disconnect.", no_args_is_help=True)


@crm_app.command(
    "connect", help="Connect TEAM's CRM; the token is read from an environment variable, stored encrypted."
)
def crm_connect(
    team: str = typer.Argument(..., help="Team name or id."),
    kind: str = typer.Argument(..., help="The CRM: hubspot."),
    token_env: str = typer.Option(..., "--token-env", metavar="VAR", help="Environment variable holding the token."),
    member: str | None = typer.Option(None, "--member", help="Admin the sync acts as (default: the first admin)."),
    max_credits_per_sync: int = typer.Option(0, "--max-credits-per-sync", min=0, help="Scheduled syncs' spend cap."),
    as_json: bool = typer.Option(False, "--json", help="Print the connection as one JSON line."),
) -> None:
    token = os.environ.get(token_env, "")
    if not token.strip():
        raise InvalidInput(f"--token-env: environment variable {token_env} is not set or empty")
    status = services().crm.connect(team, kind, token, member=member, max_credits_per_sync=max_credits_per_sync)
    echo_json(status) if as_json else typer.echo(f"connected {status.kind} for team {status.team}\n{_render(status)}")


@crm_app.command("fields", help="Show or change where fields go: FIELD=PROPERTY ... (FIELD=- stops pushing it).")
def crm_fields(
    team: str = typer.Argument(..., help="Team name or id."),
    assignments: list[str] = typer.Argument(
        None, metavar="[FIELD=PROPERTY]...", help="Fields: " + ", ".join(f.value for f in PushField) + "."
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print the connection as one JSON line."),
) -> None:
    svc = services().crm
    status = svc.set_fields(team, parse_assignments(assignments)) if assignments else svc.status(team)
    echo_json(status.field_map) if as_json else typer.echo(_render_fields(status))


@crm_app.command("sync", help="Sync TEAM's CRM now: pull changes, buy what the cap allows, push.")
def crm_sync(
    team: str = typer.Argument(..., help="Team name or id."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read only: say what it would charge and write."),
    max_credits: int | None = typer.Option(None, "--max-credits", min=0, help="This sync's spend cap (credits)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON line."),
) -> None:
    console = Console(stderr=True, soft_wrap=True)
    with progress_bar(console) as bar:
        tasks: dict[str, int] = {}

        def on_progress(p: SyncProgress) -> None:
            if p.phase not in tasks:
                tasks[p.phase] = bar.add_task(p.phase, total=max(p.total, 1), detail="")
            bar.update(tasks[p.phase], completed=p.done, total=max(p.total, p.done, 1))

        summary = services().crm.sync(team, dry_run=dry_run, max_credits=max_credits, on_progress=on_progress)
    echo_json(summary) if as_json else typer.echo(_render_summary(summary))


@crm_app.command("status", help="Show TEAM's CRM connection and its last sync.")
def crm_status(
    team: str = typer.Argument(..., help="Team name or id."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as one JSON line."),
) -> None:
    status = services().crm.status(team)
    echo_json(status) if as_json else typer.echo(_render(status))


@crm_app.command("disconnect", help="Forget TEAM's CRM token and sync records (its contacts stay the team's).")
def crm_disconnect(team: str = typer.Argument(..., help="Team name or id.")) -> None:
    gone = services().crm.disconnect(team)
    typer.echo(f"disconnected; forgot {gone} CRM records")


def _render(s: CrmStatus) -> str:
    last = s.last_sync_at.isoformat(timespec="seconds") if s.last_sync_at else "never"
    return (
        f"crm: {s.kind} as {s.member}; {s.records} CRM contacts known, {s.linked} linked; last sync {last}; "
        f"scheduled cap {s.max_credits_per_sync} credits\n{_render_fields(s)}"
    )


def _render_fields(s: CrmStatus) -> str:
    return "\n".join(f"  {f.value:<13} -> {s.field_map.get(f.value, '(not pushed)')}" for f in PushField)


def _render_summary(s: SyncSummary) -> str:
    p, w = s.pulled, s.pushed
    money = (
        f"would charge at most {s.max_credits} credits for {s.requests} requests (cap {s.credits_cap})"
        if s.dry_run
        else f"charged {s.credits_charged} credits for {s.requests} requests (cap {s.credits_cap})"
    )
    return (
        f"{'dry run: ' if s.dry_run else ''}pulled {p['read']} ({p['unchanged']} unchanged, {p['linked']} linked, "
        f"{p['new_contacts']} new contacts, {p['duplicates']} duplicates, {p['contributed']} contributed, "
        f"{p['invalid']} unreadable)\n{money}; {s.requests_over_cap} left out by the cap\n"
        f"pushed {w['values_written']} values to {w['contacts_updated']} contacts; "
        f"kept {w['kept_person_edits']} person edits; {s.api_calls} API calls"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(crm_app, name="crm")
