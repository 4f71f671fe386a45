"""`tributary verify`: check email addresses (syntax, domain, DNS, SMTP) and print one line each."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core.errors import InvalidInput
from core.services import verifier_config
from core.settings import get_settings
from core.verify.pipeline import EmailVerifier
from core.verify.result import EmailResult


def _line(result: EmailResult) -> str:
    fields = [
        result.email,
        str(result.status),
        str(result.score),
        ",".join(result.reasons) or "-",
        result.mx_host or "-",
    ]
    if result.suggestion:
        fields.append(f"did you mean {result.suggestion}?")
    if result.detail and result.status != "verified":
        fields.append(result.detail)
    # Tabs separate fields; an address containing one would shift them, so show it escaped.
    return "\t".join(f.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n") for f in fields)


def _json(result: EmailResult) -> str:
    data = result.to_dict()
    data["chargeable"] = result.chargeable
    return json.dumps(data, ensure_ascii=False)


def _parse_dns(value: str) -> tuple[str, int]:
    host, port = value, 53
    if value.startswith("["):  # [::1]:5353
        host, _, rest = value[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), "--dns")
    elif value.count(":") == 1:
        host, _, text = value.partition(":")
        port = _port(text, "--dns")
    if not host:
        raise InvalidInput(f"--dns {value!r}: expected HOST:PORT")
    return host, port


def _port(text: str, option: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidInput(f"{option}: {text!r} is not a port number (1-65535)")
    return int(text)


def _read_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"--file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"--file {path}: not UTF-8 text ({exc.reason})") from exc
    # One address per line; blank lines and `# comment` lines are skipped, everything else (even
    # garbage) gets a result.
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def verify_command(
    emails: list[str] = typer.Argument(None, metavar="EMAIL...", help="Addresses to check."),
    file: Path | None = typer.Option(None, "--file", "-f", help="A file with one address per line."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    dns: str | None = typer.Option(None, "--dns", metavar="HOST:PORT", help="DNS server (default: system)."),
    smtp_port: int | None = typer.Option(None, "--smtp-port", help="SMTP port of MX hosts (default 25)."),
    helo: str | None = typer.Option(None, "--helo", help="Name we give in EHLO."),
    mail_from: str | None = typer.Option(None, "--from", metavar="ADDR", help="Envelope sender of probes."),
    timeout: float | None = typer.Option(None, "--timeout", help="Connect and command timeout, seconds."),
    retries: int | None = typer.Option(None, "--retries", help="Retries of temporary failures (greylisting)."),
    retry_wait: float | None = typer.Option(None, "--retry-wait", help="First wait before a retry, seconds."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="SMTP sessions open at once."),
    no_starttls: bool = typer.Option(False, "--no-starttls", help="Never use STARTTLS."),
    allow_test_domains: bool = typer.Option(
        False, "--allow-test-domains", help="Accept RFC 6761 .test domains (test harnesses only)."
    ),
) -> None:
    """Verify email addresses: status (verified, accept_all, invalid, unknown), reasons, score, MX.

    Only `verified` is chargeable. Results print as they complete; a summary goes to stderr.
    """
    addresses = list(emails or [])
    if file is not None:
        addresses.extend(_read_file(file))
    if not addresses:
        raise InvalidInput("nothing to verify: give addresses or --file")

    overrides: dict[str, object] = {}
    if dns is not None:
        host, port = _parse_dns(dns)
        overrides.update(dns_nameservers=(host,), dns_port=port)
    if smtp_port is not None:
        overrides["smtp_port"] = _port(str(smtp_port), "--smtp-port")
    if helo is not None:
        overrides["helo_name"] = helo
    if mail_from is not None:
        overrides["mail_from"] = mail_from
    if timeout is not None:
        overrides.update(connect_timeout_s=timeout, command_timeout_s=timeout, dns_timeout_s=timeout)
    if retries is not None:
        overrides["temp_retries"] = retries
    if retry_wait is not None:
        overrides.update(retry_initial_wait_s=retry_wait, retry_max_wait_s=max(retry_wait * 4, retry_wait))
    if concurrency is not None:
        overrides["max_concurrency"] = concurrency
    if no_starttls:
        overrides["starttls"] = False
    if allow_test_domains:
        overrides["test_environment"] = True
    try:
        # The TRIBUTARY_VERIFY_* settings first, the flags given here over them.
        config = dataclasses.replace(verifier_config(get_settings()), **overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc

    counts: Counter[str] = Counter()
    started = time.monotonic()
    asyncio.run(_run(EmailVerifier(config), addresses, as_json, show_progress=file is not None, counts=counts))
    elapsed = time.monotonic() - started
    breakdown = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: (-counts[s], s)))
    typer.echo(f"{sum(counts.values())} checked in {elapsed:.1f}s: {breakdown}", err=True)


async def _run(
    verifier: EmailVerifier, addresses: list[str], as_json: bool, *, show_progress: bool, counts: Counter[str]
) -> None:
    progress = Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show_progress,
        # Results go to stdout untouched (pipes, --json > file); only the bar is on stderr.
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        task = progress.add_task("verify", total=len(addresses))
        async for result in verifier.verify_many(addresses):
            counts[str(result.status)] += 1
            typer.echo(_json(result) if as_json else _line(result))
            progress.advance(task)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)
