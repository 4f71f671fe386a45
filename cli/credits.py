"""`tributary credits ...` and `tributary cycle ...`: balances, grants, the usage log, cycle close."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from cli.context import echo_json, services
from core.errors import InvalidInput

credits_app = typer.Typer(help="Credit balances, grants and the usage log.", no_args_is_help=True)
cycle_app = typer.Typer(help="Billing cycles.", no_args_is_help=True)


def parse_date(value: str, option: str) -> datetime:
    """ISO dates or datetimes; a bare date means midnight UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option}: {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 datetime)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@credits_app.command("balance")
def credits_balance(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    svc = services()
    info = svc.accounts.team(team)
    balance = svc.ledger.balance(info.id)
    cycle = svc.accounts.current_cycle(info.id)
    if as_json:
        echo_json(
            {
                "team": info.name,
                "available": balance.available_credits,
                "held": balance.held_credits,
                "cycle_ends_at": cycle.ends_at,
            }
        )
        return
    typer.echo(
        f"{info.name}: {balance.available_credits} credits available, {balance.held_credits} held; "
        f"cycle ends {cycle.ends_at:%Y-%m-%d}"
    )


@credits_app.command("grant")
def credits_grant(
    team: str,
    amount: int,
    expires: str = typer.Option(..., "--expires", help="Expiry date of these credits (YYYY-MM-DD)."),
    key: str = typer.Option(..., "--key", help="Idempotency key: the same key never grants twice."),
    note: str | None = typer.Option(None, "--note", help="Why (shown in the ledger)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Grant a top-up pack. Re-running with the same key and arguments changes nothing."""
    svc = services()
    info = svc.accounts.team(team)
    transfer = svc.ledger.grant(info.id, amount, key=key, expires_at=parse_date(expires, "--expires"), description=note)
    if as_json:
        echo_json(transfer)
    else:
        typer.echo(f"granted {transfer.amount_credits} credits to {info.name} (transfer {transfer.id})")


@credits_app.command("log")
def credits_log(
    team: str,
    refunds: bool = typer.Option(True, "--refunds/--no-refunds", help="Show or hide refunds."),
    member: str | None = typer.Option(None, "--member", help="Only this member's usage."),
    since: str | None = typer.Option(None, "--since"),
    until: str | None = typer.Option(None, "--until"),
    limit: int = typer.Option(200, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The usage log: date, feature, action, description, credits, data requested, user."""
    svc = services()
    info = svc.accounts.team(team)
    member_id = svc.accounts.member(member, info.id).id if member else None
    # Refund decisions (granted or refused, with the reason) join the log when refunds are shown.
    rows = svc.refunds.usage_log(
        info.id,
        include_refunds=refunds,
        member_id=member_id,
        limit=limit,
        since=parse_date(since, "--since") if since else None,
        until=parse_date(until, "--until") if until else None,
    )
    if as_json:
        for row in rows:
            echo_json(row)
        return
    table = Table("date", "feature", "action", "description", "credits", "data requested", "user")
    for r in rows:
        table.add_row(
            f"{r.date:%Y-%m-%d %H:%M}",
            r.feature or "",
            r.action or "",
            r.description or "",
            str(r.credits),
            r.data_requested or "",
            r.user or "",
        )
    Console().print(table)


@cycle_app.command("close")
def cycle_close(team: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Close the team's billing cycle if it has ended (safe to run any time, any number of times)."""
    svc = services()
    result = svc.accounts.close_cycle(team)
    if as_json:
        echo_json(result)
        return
    if not result.closed:
        typer.echo(f"nothing to close: the current cycle ends {result.current.ends_at:%Y-%m-%d}")
        return
    typer.echo(
        f"closed {len(result.closed)} cycle(s); granted {result.allotted_credits} credits and "
        f"{result.refunded_credits} refunded; new cycle ends {result.current.ends_at:%Y-%m-%d}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(credits_app, name="credits")
    app.add_typer(cycle_app, name="cycle")
