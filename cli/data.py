"""`tributary access email|mobile TEAM MEMBER PERSON_REF`: a data request from the command line."""

from __future__ import annotations

import typer

from cli.context import echo_json, services
from core.data_requests import AccessResult
from core.usage.text import credits_text
from storage.models.enums import DataKind, Feature


def render(result: AccessResult) -> str:
    who = result.person.full_name + (f" ({result.person.company})" if result.person.company else "")
    lines = []
    if result.kind == DataKind.EMAIL:
        email = f"{result.email.address} [{result.email.status}]" if result.email else "no email found"
        lines.append(f"{who}: {email}")
        if result.office_phone:
            lines.append(f"office phone: {result.office_phone.e164}")
    else:
        phones = ", ".join(f"{p.e164} [{p.status}]" for p in result.mobile_phones) or "no mobile found"
        lines.append(f"{who}: {phones}")
    cost = "already accessed: no charge" if result.already_accessed else credits_text(result.charged_credits)
    lines.append(cost)
    return "\n".join(lines)


def access(
    kind: DataKind = typer.Argument(..., help="email or mobile"),
    team: str = typer.Argument(...),
    member: str = typer.Argument(..., help="Member email or id."),
    person: str = typer.Argument(..., help="Person id, email address or LinkedIn URL."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Access a person's email or mobile: charged once per team, only when something chargeable is found."""
    result = services().data_requests.access(team, member, person, kind, feature=Feature.CLI)
    if as_json:
        echo_json(result)
    else:
        typer.echo(render(result))


def register(app: typer.Typer) -> None:
    app.command("access")(access)
