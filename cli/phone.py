"""`tributary verify-phone`: check phone numbers against libphonenumber's numbering plans."""

from __future__ import annotations

import json

import typer

from core.verify.phone import PhoneResult, verify_phones


def _line(result: PhoneResult) -> str:
    fields = [
        result.input,
        str(result.status),
        result.e164 or "-",
        str(result.line_type) if result.line_type else "-",
        result.region or "-",
        str(result.kind) if result.kind else "-",
    ]
    if result.carrier:
        fields.append(f"carrier={result.carrier}")
    if result.reason:
        fields.append(f"reason={result.reason} ({result.detail})")
    return "\t".join(fields)


def verify_phone_command(
    numbers: list[str] = typer.Argument(..., metavar="NUMBER...", help="Numbers, national or +CC form."),
    region: str | None = typer.Option(
        None, "--region", help="Default region (ISO 3166 alpha-2, e.g. US, GB) for numbers without +CC."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Check phone numbers: status, E.164 form, line type, region, mobile/office kind.

    Valid means the number fits its country's plan; nobody dials it, so it may not be in service.
    """
    # An unknown --region raises InvalidInput before any number is read: run_cli prints one line
    # and exits 2.
    for result in verify_phones(numbers, region):
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False) if as_json else _line(result))


def register(app: typer.Typer) -> None:
    app.command("verify-phone")(verify_phone_command)
