"""`tributary accounts list|show|assign`: a team's accounts (the companies of its contacts) and
their owners. The actor is TEAM and MEMBER (email or id); filters are words: `owner:@me acme`."""

from __future__ import annotations

import typer

from cli.contacts import actor
from cli.context import echo_json, echo_page, services
from core.errors import InvalidInput
from core.team_contacts.accounts import ACCOUNT_WORDS
from core.team_contacts.models import AccountSelection, AccountView, PageRequest

accounts_app = typer.Typer(
    help="A team's accounts (the companies of its contacts): find, show, assign owners.", no_args_is_help=True
)
_WORDS = typer.Argument(None, help=f"Filter words ({ACCOUNT_WORDS}).", show_default=False)


def line(a: AccountView) -> str:
    domain = f" ({a.domain})" if a.domain else ""
    return (
        f"{a.id:>7}  {a.name}{domain}  {a.contacts} contacts  owner {a.owner_email or '-'}  {a.source}  "
        f"{a.saved_at:%Y-%m-%d}"
    )


def parse_ids(ids: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ids.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--ids: {ids!r} is not a comma-separated list of account ids") from None


@accounts_app.command("list")
def accounts_list(
    team: str,
    member: str,
    words: list[str] | None = _WORDS,
    limit: int = typer.Option(25, "--limit", help="Accounts per page (1-200)."),
    cursor: str | None = typer.Option(None, "--cursor", help="The next-page cursor printed by the previous page."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One page of the team's accounts matching the filter words, newest saved first."""
    who = actor(team, member)
    svc = services().team_accounts
    page = svc.find(who, svc.filter_from_words(who, words or []), PageRequest(limit, cursor))
    echo_page(page.accounts, page.next_cursor, line, as_json=as_json)


@accounts_app.command("show")
def accounts_show(team: str, member: str, account_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """One account: its owner, source, date saved and how many of the team's contacts work there
    (its contacts: `tributary contacts list TEAM MEMBER` with the account's company)."""
    a = services().team_accounts.show(actor(team, member), account_id)
    echo_json(a) if as_json else typer.echo(line(a))


@accounts_app.command("assign")
def accounts_assign(
    team: str,
    member: str,
    owner: str = typer.Argument(..., help="The new owner: member email or id."),
    words: list[str] | None = _WORDS,
    ids: str | None = typer.Option(None, "--ids", help="Account ids, comma-separated (instead of filter words)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Give accounts to an owner (admins: any account; members: their own). Their contacts keep
    their owners."""
    who = actor(team, member)
    svc = services().team_accounts
    if ids and words:
        raise InvalidInput("give --ids or filter words, not both")
    if ids:
        selection = AccountSelection(account_ids=parse_ids(ids))
    else:
        selection = AccountSelection(filter=svc.filter_from_words(who, words or []))
    result = svc.assign(who, int(owner) if owner.isdigit() else owner, selection)
    if as_json:
        echo_json(result)
    else:
        typer.echo(f"{result.changed} of {result.matched} accounts assigned to {owner}")


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
