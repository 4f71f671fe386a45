"""`tributary sheets-addon bundle`: the Google Sheets add-on's Apps Script project, ready for clasp."""

from __future__ import annotations

from pathlib import Path

import typer

from sheets_addon.bundle import CLASP_FILE, write_bundle

sheets_addon_app = typer.Typer(help="The Google Sheets add-on's Apps Script project.", no_args_is_help=True)


@sheets_addon_app.command("bundle")
def bundle_command(
    backend_url: str = typer.Option(
        ..., "--backend-url", help="Where this Tributary serves /sheets/v1 (https; http only on loopback)."
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Directory to write the project to (created if missing)."),
    script_id: str | None = typer.Option(
        None, "--script-id", help="The Apps Script project's id: also write .clasp.json for `clasp push`."
    ),
) -> None:
    """Write the Apps Script project with the backend URL filled in (Code.gs and urlFetchWhitelist)."""
    bundle = write_bundle(backend_url, out, script_id=script_id)
    names = ", ".join(path.name for path in bundle.files)
    typer.echo(f"wrote {names} to {bundle.directory} for {bundle.backend_url}")
    if script_id is None:
        typer.echo(f"next: add a {CLASP_FILE} (--script-id) or run `clasp create --type sheets`, then `clasp push`")
    else:
        typer.echo(f"next: cd {bundle.directory} && clasp push")


def register(app: typer.Typer) -> None:
    app.add_typer(sheets_addon_app, name="sheets-addon")
