"""`tributary bounces ...`: bounce intake commands. `parse` reads bounce files and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.bounces.parse import MAX_BOUNCE_BYTES, BounceParseError, BounceReport, parse_bounce
from core.errors import TributaryError

bounces_app = typer.Typer(help="Bounce messages: parse them (and, later, ingest them).", no_args_is_help=True)


class SomeFilesFailed(TributaryError):
    """Raised after every file was reported, so one bad file never hides the others."""

    exit_code = 1


def report_to_json(file: str, report: BounceReport) -> dict[str, object]:
    return {
        "file": file,
        "recipients": [
            {
                "address": r.address,
                "class": str(r.bounce_class),
                "status": r.status,
                "reason": r.reason,
                "diagnostic": r.diagnostic,
                "action": r.action,
            }
            for r in report.recipients
        ],
        "format": report.format,
        "message_id": report.message_id,
        "message_id_source": report.message_id_source,
        "bounce_message_id": report.bounce_message_id,
        "note": report.reason,
        "defects": list(report.defects),
    }


def parse_file(path: Path) -> dict[str, object]:
    """One file's JSON object; every failure becomes an object with an `error` field."""
    try:
        size = path.stat().st_size
        if size > MAX_BOUNCE_BYTES:
            raise BounceParseError("too_large", f"message larger than {MAX_BOUNCE_BYTES} bytes")
        raw = path.read_bytes()
        return report_to_json(str(path), parse_bounce(raw))
    except BounceParseError as exc:
        return {"file": str(path), "error": str(exc), "error_code": exc.code, "recipients": []}
    except OSError as exc:
        return {
            "file": str(path),
            "error": f"cannot read file: {exc.strerror or exc}",
            "error_code": "unreadable",
            "recipients": [],
        }


def _text_line(result: dict[str, object]) -> str:
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    recipients = result["recipients"]
    assert isinstance(recipients, list)
    if not recipients:
        return f"{result['file']}: no failed recipient ({result['note']})"
    parts = [f"{r['address']} {r['class']}" + (f" {r['status']}" if r["status"] else "") for r in recipients]
    return f"{result['file']}: " + ", ".join(parts)


@bounces_app.command("parse")
def parse_command(
    files: list[Path] = typer.Argument(..., metavar="FILE.eml...", help="Raw bounce messages (RFC 5322 files)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Parse bounce files and print the failed recipients, hard or soft. Stores nothing.

    A file that cannot be read or parsed is reported and the others still are; the exit code is 1
    if any file failed.
    """
    failed = 0
    for path in files:
        result = parse_file(path)
        failed += "error" in result
        typer.echo(json.dumps(result, ensure_ascii=False) if as_json else _text_line(result))
    if failed:
        # An exception, not typer.Exit: run_cli runs the app with standalone_mode=False, where
        # click returns Exit's code instead of exiting, and the code would be lost.
        raise SomeFilesFailed(f"{failed} of {len(files)} file(s) could not be parsed")


def register(app: typer.Typer) -> None:
    app.add_typer(bounces_app, name="bounces")
