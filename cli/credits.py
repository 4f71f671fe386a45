"""`tributary credits ...` and `tributary cycle ...`: balances, grants, the usage log, cycle close."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import typer
from rich.table import Table

from cli.context import echo_json, services, table_console
from core.errors import InvalidInput
from core.usage.text import credits_text

MAX_LOG_ROWS = 10_000

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
    """Credits available and held, and the lots they come from with their expiry dates."""
    svc = services()
    info = svc.accounts.team(team)
    balance = svc.ledger.balance(info.id)
    cycle = svc.accounts.current_cycle(info.id)
    lots = svc.credit_history.live_lots(info.id, now=balance.as_of)
    if as_json:
        echo_json(
            {
                "team": info.name,
                "available": balance.available_credits,
                "held": balance.held_credits,
                "cycle_ends_at": cycle.ends_at,
                "lots": [
                    {
                        "source": lot.source,
                        "granted": lot.granted_credits,
                        "remaining": lot.remaining_credits,
                        "expires_at": lot.expires_at,
                        "note": lot.note,
                    }
                    for lot in lots
                ],
            }
        )
        return
    typer.echo(
        f"{info.name}: {credits_text(balance.available_credits)} available, {balance.held_credits:,} held; "
        f"cycle ends {cycle.ends_at:%Y-%m-%d}"
    )
    for lot in lots:
        expiry = f"expires {lot.expires_at:%Y-%m-%d}" if lot.expires_at else "never expires"
        note = f" - {lot.note}" if lot.note else ""
        typer.echo(f"  {credits_text(lot.remaining_credits)} of {lot.granted_credits:,} ({lot.source}), {expiry}{note}")


@credits_app.command(
    "grant",
    # `grant demo -100`: a negative amount is an amount (refused as such), not an unknown option `-1`.
    context_settings={"ignore_unknown_options": True},
)
def credits_grant(
    team: str = typer.Argument(..., help="Team name or #id."),
    amount: int = typer.Argument(..., help="Credits to grant (a whole number above 0)."),
    expires: str = typer.Option(..., "--expires", help="Expiry date of these credits (YYYY-MM-DD)."),
    key: str = typer.Option(..., "--key", help="Idempotency key: the same key never grants twice."),
    note: str | None = typer.Option(None, "--note", help="Why (shown in the log and the balance)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Grant a top-up pack. Re-running with the same key and arguments changes nothing."""
    svc = services()
    info = svc.accounts.team(team)
    outcome = svc.credit_history.grant(info.id, amount, key=key, expires_at=parse_date(expires, "--expires"), note=note)
    transfer = outcome.transfer
    if as_json:
        echo_json({**asdict(transfer), "replayed": outcome.replayed})
    elif outcome.replayed:
        typer.echo(f"already granted under key {key!r} (transfer {transfer.id}), nothing changed")
    else:
        typer.echo(f"granted {credits_text(transfer.amount_credits)} to {info.name} (transfer {transfer.id})")


@credits_app.command("log")
def credits_log(
    team: str = typer.Argument(..., help="Team name or #id."),
    refunds: bool = typer.Option(True, "--refunds/--no-refunds", help="Show or hide refunds."),
    grants: bool = typer.Option(True, "--grants/--no-grants", help="Show or hide grants and allotments."),
    member: str | None = typer.Option(None, "--member", help="Only this member's usage."),
    since: str | None = typer.Option(None, "--since", help="From this date (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Before this date (YYYY-MM-DD)."),
    limit: int = typer.Option(200, "--limit", min=1, max=MAX_LOG_ROWS, help="Rows at most."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The usage log: date, feature, action, description, credits, data requested, user.

    Credits shown with `+` were added (grants, refunds); grants carry their note and expiry."""
    svc = services()
    info = svc.accounts.team(team)
    member_id = svc.accounts.member(member, info.id).id if member else None
    # Refund decisions (granted or refused, with the reason) join the log when refunds are shown.
    rows = svc.credit_history.usage_log(
        info.id,
        include_refunds=refunds,
        include_grants=grants,
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
            f"+{-r.credits:,}" if r.credits < 0 else f"{r.credits:,}",
            r.data_requested or "",
            r.user or "",
        )
    table_console().print(table)


@cycle_app.command("close")
def cycle_close(
    team: str = typer.Argument(..., help="Team name or #id."), as_json: bool = typer.Option(False, "--json")
) -> None:
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
        f"closed {len(result.closed)} cycle(s); granted {credits_text(result.allotted_credits)} and "
        f"{result.refunded_credits:,} refunded; new cycle ends {result.current.ends_at:%Y-%m-%d}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(credits_app, name="credits")
    app.add_typer(cycle_app, name="cycle")
