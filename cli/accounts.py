"""`tributary teams|members|plans|demo ...`: customer accounts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cli.context import echo_json, services, table_console
from core.usage.text import credits_text
from demo import seed as demo
from demo import world as demo_world
from storage.models.enums import Role

teams_app = typer.Typer(help="Teams (customer accounts).", no_args_is_help=True)
members_app = typer.Typer(help="Team members.", no_args_is_help=True)
plans_app = typer.Typer(help="Plans: monthly credits, rollover and prices.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)


@teams_app.command("create")
def teams_create(
    name: str,
    plan: str = typer.Option("free", "--plan", help="Plan name."),
    anchor_day: int | None = typer.Option(None, help="Day of month each billing cycle starts (default: today)."),
    no_contribute: bool = typer.Option(False, "--no-contribute", help="Opt out of the contributor network."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a team with its first billing cycle and that cycle's credits."""
    team = services().accounts.create_team(name, plan=plan, anchor_day=anchor_day, contribute=not no_contribute)
    if as_json:
        echo_json(team)
    else:
        credits = credits_text(team.plan.monthly_credits)
        typer.echo(f"team {team.name} (id #{team.id}) on plan {team.plan.name}: {credits}")


@teams_app.command("list")
def teams_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List teams: id (write it `#3` wherever a team is asked for), name, plan, anchor day."""
    teams = services().accounts.teams()
    if as_json:
        for team in teams:
            echo_json(team)
        return
    table = Table("id", "name", "plan", "anchor day", "contributes")
    for t in teams:
        table.add_row(str(t.id), t.name, t.plan.name, str(t.cycle_anchor_day), "yes" if t.contribute else "no")
    table_console().print(table)


@teams_app.command("set-plan")
def teams_set_plan(team: str, plan: str) -> None:
    """Change a team's plan; the new allotment applies from the next cycle."""
    info = services().accounts.set_plan(team, plan)
    typer.echo(f"team {info.name} is on plan {info.plan.name} from its next cycle")


@teams_app.command("set-contribute")
def teams_set_contribute(
    team: str,
    on: bool = typer.Option(..., "--on/--off", help="Contribute to the shared contributor database, or opt out."),
) -> None:
    """Opt a team in or out of the contributor network (an opted-out team's uploads stay its own)."""
    info = services().accounts.set_contribute(team, on)
    state = "contributes to" if info.contribute else "no longer contributes to (opted out of)"
    typer.echo(f"team {info.name} {state} the shared contributor database")


@teams_app.command("set-google-domain")
def teams_set_google_domain(
    team: str,
    domain: str | None = typer.Argument(None, help="The team's Google Workspace domain, e.g. acme.com."),
    clear: bool = typer.Option(False, "--clear", help="Accept members' Google accounts of any domain again."),
) -> None:
    """Sheets add-on: accept only Google accounts of this Workspace domain (the ID token's `hd`) for
    the team's members; `--clear` lifts the restriction."""
    from core.errors import InvalidInput

    if clear == (domain is not None):
        raise InvalidInput("give a DOMAIN, or --clear to lift the restriction")
    identities = services().sheets.identities
    name = services().accounts.team(team).name
    result = identities.restrict_domain(team, None if clear else domain)
    if result is None:
        typer.echo(f"team {name}: members may use the Sheets add-on with a Google account of any domain")
    else:
        typer.echo(f"team {name}: the Sheets add-on accepts only Google accounts of {result}")


@members_app.command("add")
def members_add(
    team: str,
    email: str,
    admin: bool = typer.Option(False, "--admin", help="Make the member an admin."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a member (an email address) to a team."""
    member = services().accounts.add_member(team, email, role=Role.ADMIN if admin else Role.MEMBER)
    if as_json:
        echo_json(member)
    else:
        typer.echo(f"{member.email} added to {team} as {member.role} (id {member.id})")


@members_app.command("list")
def members_list(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """List a team's members and their roles."""
    members = services().accounts.members(team)
    if as_json:
        for m in members:
            echo_json(m)
        return
    table = Table("id", "email", "role")
    for m in members:
        table.add_row(str(m.id), m.email, m.role.value)
    table_console().print(table)


@plans_app.command("list")
def plans_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List plans: monthly credits, rollover and prices."""
    plans = services().accounts.plans()
    if as_json:
        for p in plans:
            echo_json(p)
        return
    table = Table("name", "credits/month", "rollover", "email", "mobile", "export", "built in")
    for p in plans:
        table.add_row(
            p.name,
            str(p.monthly_credits),
            "yes" if p.rollover else "no",
            str(p.price_email_credits),
            str(p.price_mobile_credits),
            str(p.price_export_credits),
            "yes" if p.builtin else "no",
        )
    table_console().print(table)


@plans_app.command("create")
def plans_create(
    name: str,
    credits: int = typer.Option(..., "--credits", help="Credits granted each billing cycle."),
    rollover: bool = typer.Option(False, "--rollover", help="Unspent credits do not expire at cycle end."),
    email_price: int = typer.Option(1, "--email-price"),
    mobile_price: int = typer.Option(8, "--mobile-price"),
    export_price: int = typer.Option(0, "--export-price"),
) -> None:
    """Create a plan (at most 1,000,000,000 credits a month, the limit of one grant)."""
    plan = services().accounts.create_plan(
        name,
        monthly_credits=credits,
        rollover=rollover,
        price_email_credits=email_price,
        price_mobile_credits=mobile_price,
        price_export_credits=export_price,
    )
    typer.echo(f"plan {plan.name}: {credits_text(plan.monthly_credits)} a month")


@demo_app.command("seed")
def demo_seed(
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing unless the database has no team yet."),
    small: bool = typer.Option(False, "--small", help="Only the demo team and its few people, not the large world."),
) -> None:
    """Create the `demo` team (basic plan, admin@demo.test, rep@demo.test), a few people, and the large
    deterministic demo world (2,000 companies, 50,000 people; skipped if already there)."""
    accounts = services().accounts
    if if_empty and not demo.is_empty(accounts):
        typer.echo("database already has teams: demo seed skipped")
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        created, world = demo.seed(accounts, world=not small, on_progress=on_progress)
    typer.echo("demo team seeded" if created else "demo team already exists")
    if world is not None:
        typer.echo(
            f"demo world seeded: {world.companies} companies, {world.people} people, {world.emails} emails, "
            f"{world.phones} phones"
            if world.created
            else "demo world already exists"
        )


@demo_app.command("mail-servers")
def demo_mail_servers(
    output: Path = typer.Option(..., "-o", "--output", help="JSON file to write the description to."),
) -> None:
    """Describe the demo world's mail servers (behaviour and mailboxes per domain) as JSON, for the
    simulated mail internet (tests/mailnet) to serve."""
    domains = demo_world.mail_servers()
    output.write_text(json.dumps([asdict(d) for d in domains], indent=1))
    typer.echo(f"{len(domains)} demo mail domains written to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(teams_app, name="teams")
    app.add_typer(members_app, name="members")
    app.add_typer(plans_app, name="plans")
    app.add_typer(demo_app, name="demo")
