"""`tributary bounces ...`: bounce intake commands. `parse` reads bounce files and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.context import echo_json, services
from core.bounces.intake import IntakeResult, IntakeSource, IntakeStatus
from core.bounces.parse import MAX_BOUNCE_BYTES, BounceParseError, BounceReport, parse_bounce
from core.errors import TributaryError

bounces_app = typer.Typer(
    help="Bounce messages: parse, ingest (match and refund), list unmatched.", no_args_is_help=True
)


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
    if not isinstance(recipients, list):
        raise TypeError(f"recipients: expected a list, got {type(recipients).__name__}")
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


@bounces_app.command("ingest")
def ingest_command(
    files: list[Path] = typer.Argument(..., metavar="FILE.eml...", help="Raw bounce messages (RFC 5322 files)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Store bounce files, match them to sends and decide refunds. Idempotent: a file ingested twice
    changes nothing the second time. A file that cannot be parsed is kept (unparseable) and reported;
    the exit code is 1 if any could not be read or parsed."""
    from rich.progress import Progress

    intake = services().bounce_intake
    lines: list[str] = []
    failed = 0
    with Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task("ingesting bounces", total=len(files))
        for path in files:
            try:
                if path.stat().st_size > MAX_BOUNCE_BYTES:
                    raise BounceParseError("too_large", f"message larger than {MAX_BOUNCE_BYTES} bytes")
                raw = path.read_bytes()
            except (OSError, BounceParseError) as exc:
                failed += 1
                message = str(exc) if isinstance(exc, BounceParseError) else f"cannot read file: {exc.strerror or exc}"
                error = {"file": str(path), "error": message}
                lines.append(json.dumps(error) if as_json else f"{path}: error: {message}")
                progress.advance(task)
                continue
            result = intake.ingest_message(raw, source=IntakeSource.FILE, source_ref=str(path))
            failed += result.status == IntakeStatus.UNPARSEABLE
            lines.append(_ingest_line(str(path), result, as_json))
            progress.advance(task)
    for line in lines:
        typer.echo(line)
    if failed:
        raise SomeFilesFailed(f"{failed} of {len(files)} file(s) could not be parsed (kept as unparseable)")


def _ingest_line(file: str, result: IntakeResult, as_json: bool) -> str:
    outcomes = [
        {
            "bounce_id": o.bounce_id,
            "matched": o.matched,
            "refund": o.decision.outcome.value if o.decision else None,
            "reason": o.decision.reason.value if o.decision else None,
            "credits": o.decision.credits if o.decision else 0,
            "pending": o.pending,
            "refusal": o.refusal,
        }
        for o in result.outcomes
    ]
    if as_json:
        return json.dumps(
            {
                "file": file,
                "intake_id": result.intake_id,
                "status": result.status,
                "duplicate": result.duplicate,
                "error": result.error,
                "bounces": outcomes,
            }
        )
    if result.status == IntakeStatus.UNPARSEABLE:
        return f"{file}: kept as unparseable (intake {result.intake_id}): {result.error}"
    if not outcomes:
        return f"{file}: no failed recipient (intake {result.intake_id}): {result.error}"
    parts = [
        f"bounce {o['bounce_id']}: "
        + (
            f"refund {o['refund']} ({o['reason']})"
            if o["matched"] and o["refund"]
            else "matched, waiting for a re-check of the mailbox"
            if o["pending"]
            else f"proves no send of ours, kept ({o['refusal']})"
        )
        for o in outcomes
    ]
    return f"{file}: " + ("duplicate; " if result.duplicate else "") + "; ".join(parts)


@bounces_app.command("unmatched")
def unmatched_command(as_json: bool = typer.Option(False, "--json", help="One JSON object per bounce.")) -> None:
    """Bounces that match no send made through Tributary: kept, never dropped."""
    rows = services().bounce_intake.unmatched()
    for row in rows:
        if as_json:
            echo_json(row)
        else:
            typer.echo(
                f"{row.id}\t{row.received_at:%Y-%m-%d %H:%M}\t{row.recipient}\t{row.bounce_class}"
                f"\t{row.status_code or '-'}\t{row.message_id or '-'}\t{row.source}\t{row.refusal or '-'}"
            )
    if not rows and not as_json:
        typer.echo("no unmatched bounces")


@bounces_app.command("poll")
def poll_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Poll the bounce mailbox once now (the scheduler does it every minute)."""
    from core.bounces.mailbox import MailboxConfig, poll_mailbox

    svc = services()
    config = MailboxConfig.from_settings(svc.settings)
    if config is None:
        raise TributaryError("no bounce mailbox configured (TRIBUTARY_BOUNCE_IMAP_HOST, _USER, _PASSWORD)")
    result = poll_mailbox(config, svc.bounce_intake, take_reply=svc.engagement.take_reply)
    if as_json:
        echo_json(result)
    else:
        typer.echo(
            f"{result.fetched} fetched, {result.stored} new, {result.duplicates} duplicate, "
            f"{result.unparseable} unparseable, {result.bounces} bounce(s), {result.replies} reply(ies)"
        )


@bounces_app.command("webhook-secret")
def webhook_secret_command(
    team: str,
    rotate: bool = typer.Option(False, "--rotate", help="Replace the secret; the old one stops working at once."),
) -> None:
    """Show the team's bounce-webhook signing secret (created on first use), or rotate it.

    The team's sending service signs `POST /api/v1/events/bounces/TEAM` with it."""
    secrets = services().webhook_secrets
    found = secrets.rotate(team) if rotate else secrets.show(team)
    typer.echo(found.secret)


def register(app: typer.Typer) -> None:
    app.add_typer(bounces_app, name="bounces")
