"""`tributary contacts list|show|assign|export|changes` and `tributary lists create|add|remove|show`.

The actor is TEAM and MEMBER (email or id); filters are words: `status:verified owner:@me acme`."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import echo_json, echo_page, services
from cli.credits import parse_date
from core.accounts import MemberInfo
from core.errors import InvalidInput
from core.team_contacts.filters import FILTER_WORDS
from core.team_contacts.models import ContactFilter, ContactView, PageRequest, Selection, Sort
from storage.models.enums import Feature

contacts_app = typer.Typer(help="A team's contacts: find, show, assign owners, export to CSV.", no_args_is_help=True)
lists_app = typer.Typer(help="Named static lists of contacts.", no_args_is_help=True)

WORDS_HELP = f"Filter words ({FILTER_WORDS}); other words search name and company."
_WORDS = typer.Argument(None, help=WORDS_HELP, show_default=False)
_IDS = typer.Option(None, "--ids", help="Contact ids, comma-separated (instead of filter words).")


def actor(team: str, member: str) -> MemberInfo:
    svc = services()
    info = svc.accounts.team(team)
    return svc.accounts.member(int(member) if member.isdigit() else member, info.id)


def parse_ids(ids: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ids.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--ids: {ids!r} is not a comma-separated list of contact ids") from None


def selection(who: MemberInfo, ids: str | None, words: list[str] | None) -> Selection:
    if ids and words:
        raise InvalidInput("give --ids or filter words, not both")
    if ids:
        return Selection(contact_ids=parse_ids(ids))
    return Selection(filter=services().team_contacts.filter_from_words(who, words or []))


def line(c: ContactView) -> str:
    phones = ", ".join(f"{p.e164} ({p.line_type or p.kind})" for p in c.phones if p.status != "invalid")
    company = f" — {c.company}" if c.company else ""
    if c.job_change_on:
        company += f" (job change {c.job_change_on:%Y-%m-%d})"
    return (
        f"{c.id:>7}  {c.full_name}{company}  {c.email or '-'} [{c.email_status}]  {phones or 'no phone'}  "
        f"owner {c.owner_email or '-'}  {c.source}  {c.saved_at:%Y-%m-%d}"
    )


@contacts_app.command("list")
def contacts_list(
    team: str,
    member: str,
    words: list[str] | None = _WORDS,
    limit: int = typer.Option(25, "--limit", help="Contacts per page (1-200)."),
    cursor: str | None = typer.Option(None, "--cursor", help="The next-page cursor printed by the previous page."),
    sort: Sort = typer.Option(Sort.SAVED_DESC, "--sort"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One page of the team's contacts matching the filter words."""
    who = actor(team, member)
    svc = services()
    page = svc.team_contacts.find(
        who, svc.team_contacts.filter_from_words(who, words or []), PageRequest(limit, cursor, sort)
    )
    echo_page(page.contacts, page.next_cursor, line, as_json=as_json)


@contacts_app.command("show")
def contacts_show(team: str, member: str, contact_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """One contact with its live statuses, owner, source and lists."""
    c = services().team_contacts.show(actor(team, member), contact_id)
    if as_json:
        echo_json(c)
        return
    typer.echo(line(c))
    if c.title or c.location or c.linkedin_url:
        typer.echo("  " + "  ".join(v for v in (c.title, c.location, c.linkedin_url) if v))
    typer.echo(f"  lists: {', '.join(c.lists) or '-'}")


@contacts_app.command("assign")
def contacts_assign(
    team: str,
    member: str,
    owner: str = typer.Argument(..., help="The new owner: member email or id."),
    words: list[str] | None = _WORDS,
    ids: str | None = _IDS,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Give contacts to an owner (admins: any contact; members: their own)."""
    who = actor(team, member)
    ref = int(owner) if owner.isdigit() else owner
    result = services().team_contacts.assign(who, ref, selection(who, ids, words))
    if as_json:
        echo_json(result)
    else:
        typer.echo(f"{result.changed} of {result.matched} contacts assigned to {owner}")


@contacts_app.command("export")
def contacts_export(
    team: str,
    member: str,
    words: list[str] | None = _WORDS,
    out: Path | None = typer.Option(None, "-o", "--out", help="The CSV file to write."),
    max_credits: int | None = typer.Option(None, "--max-credits", help="Refuse if the export would cost more."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what it would cost (exactly)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export the contacts matching the filter words (e.g. `list:Q3`) to CSV; new ones cost the plan's
    export price, once per contact."""
    who = actor(team, member)
    svc = services()
    f: ContactFilter = svc.team_contacts.filter_from_words(who, words or [])
    if dry_run:
        preview = svc.contact_exports.preview(who, f)
        if as_json:
            echo_json(preview)
        else:
            typer.echo(f"{preview.contacts} contacts, {preview.net_new} new: {preview.credits} credits")
        return
    if out is None:
        raise InvalidInput("-o/--out: name the CSV file to write (or use --dry-run)")
    with out.open("wb") as fh:
        result = svc.contact_exports.export(who, f, fh, feature=Feature.CLI, max_credits=max_credits)
    if as_json:
        echo_json(result)
    else:
        typer.echo(
            f"{result.rows_written} contacts written to {out} ({result.net_new} new: {result.credits_charged} credits)"
        )


@lists_app.command("create")
def lists_create(team: str, member: str, name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Create a named (static) list of the team's contacts."""
    info = services().contact_lists.create(actor(team, member), name)
    if as_json:
        echo_json(info)
    else:
        typer.echo(f"list {info.name!r} created (id {info.id})")


def _bulk(verb: str, team: str, member: str, name: str, words, ids, as_json: bool) -> None:
    who = actor(team, member)
    lists = services().contact_lists
    op = lists.add if verb == "added to" else lists.remove
    result = op(who, name, selection(who, ids, words))
    if as_json:
        echo_json(result)
    else:
        typer.echo(f"{result.changed} of {result.matched} contacts {verb} {name!r}")


@lists_app.command("add")
def lists_add(
    team: str, member: str, name: str, words: list[str] | None = _WORDS, ids: str | None = _IDS,
    as_json: bool = typer.Option(False, "--json"),
) -> None:  # fmt: skip
    """Add contacts (by --ids or by filter words) to a list."""
    _bulk("added to", team, member, name, words, ids, as_json)


@lists_app.command("remove")
def lists_remove(
    team: str, member: str, name: str, words: list[str] | None = _WORDS, ids: str | None = _IDS,
    as_json: bool = typer.Option(False, "--json"),
) -> None:  # fmt: skip
    """Remove contacts (by --ids or by filter words) from a list."""
    _bulk("removed from", team, member, name, words, ids, as_json)


@lists_app.command("show")
def lists_show(
    team: str,
    member: str,
    name: str | None = typer.Argument(None, help="A list's name or id; none: every list."),
    limit: int = typer.Option(25, "--limit"),
    cursor: str | None = typer.Option(None, "--cursor"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every list with its size, or one list's contacts page by page."""
    who = actor(team, member)
    svc = services()
    if name is None:
        for info in svc.contact_lists.all(who):
            echo_json(info) if as_json else typer.echo(f"{info.id:>5}  {info.name}  {info.contacts} contacts")
        return
    info = svc.contact_lists.get(who, name)
    page = svc.team_contacts.find(who, ContactFilter(list_id=info.id), PageRequest(limit, cursor))
    if as_json:
        for c in page.contacts:
            echo_json(c)
        echo_json({"next_cursor": page.next_cursor})
        return
    typer.echo(f"{info.name}: {info.contacts} contacts")
    for c in page.contacts:
        typer.echo(line(c))
    if page.next_cursor:
        typer.echo(f"next page: --cursor {page.next_cursor}")


@contacts_app.command("changes")
def contacts_changes(
    team: str,
    since: str | None = typer.Option(None, "--since", help="Only moves on or after this date (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The team's contacts who changed jobs after the team saved them, most recent first."""
    changes = services().job_changes.changes(team, since=parse_date(since, "--since").date() if since else None)
    if as_json:
        for change in changes:
            echo_json(change)
        return
    for c in changes:
        moved = f"{c.old_company} -> {c.new_company}" if c.old_company else f"now at {c.new_company}"
        typer.echo(
            f"{c.team_contact_id:>7}  {c.full_name}  {moved}  {c.changed_on:%Y-%m-%d}  "
            f"owner {c.owner_email or '-'}  ({c.evidence})"
        )
    if not changes:
        typer.echo("no job changes")


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(lists_app, name="lists")
