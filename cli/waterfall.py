"""`tributary waterfall show|set|sources|calls`: admins configure each team's waterfall of sources."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.context import echo_json, services, table_console
from core.waterfall import WaterfallPlan

waterfall_app = typer.Typer(
    help="Waterfall enrichment: which sources a team's lookups try, in order.", no_args_is_help=True
)


def _names(value: str | None) -> list[str] | None:
    return None if value is None else value.split(",")


def _render(team: str, plan: WaterfallPlan) -> str:
    origin = "" if plan.configured else " (default: not configured)"
    return "\n".join(
        [
            f"team {team}{origin}",
            f"email: {' -> '.join(plan.email_sources)}",
            f"phone: {' -> '.join(plan.phone_sources)}",
            f"validate provider emails: {'yes' if plan.validate_email else 'no'}",
        ]
    )


@waterfall_app.command("show")
def show(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a team's waterfall."""
    plan = services().waterfalls.get(team)
    if as_json:
        echo_json(plan)
    else:
        typer.echo(_render(team, plan))


@waterfall_app.command("set")
def set_(
    team: str,
    email: str | None = typer.Option(None, "--email", help="Email sources in order, comma-separated."),
    phone: str | None = typer.Option(None, "--phone", help="Phone sources in order, comma-separated."),
    validate: bool | None = typer.Option(
        None, "--validate/--no-validate", help="Verify a provider's email with our verifier before accepting it."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change a team's waterfall; options left out keep their current value."""
    plan = services().waterfalls.set(
        team, email_sources=_names(email), phone_sources=_names(phone), validate_email=validate
    )
    if as_json:
        echo_json(plan)
    else:
        typer.echo(_render(team, plan))


@waterfall_app.command("sources")
def sources(as_json: bool = typer.Option(False, "--json")) -> None:
    """The sources a waterfall can name: built in, and the providers configured in TRIBUTARY_PROVIDERS."""
    for name in services().waterfalls.source_names():
        if as_json:
            echo_json({"name": name})
        else:
            typer.echo(name)


@waterfall_app.command("calls")
def calls(
    team: str,
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A team's latest source calls: source, outcome, latency and our cost."""
    records = services().waterfalls.calls(team, limit=limit)
    if as_json:
        for record in records:
            echo_json(record)
        return
    table = Table("when", "person", "kind", "source", "outcome", "status", "latency ms", "cost usd")
    for r in records:
        table.add_row(
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(r.person_id),
            r.kind,
            r.source,
            r.outcome,
            r.result_status or "-",
            str(r.latency_ms),
            f"{r.cost_usd_micros / 1_000_000:.4f}",
        )
    table_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(waterfall_app, name="waterfall")
