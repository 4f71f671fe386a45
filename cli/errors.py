"""Errors become one clear line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import sys

import typer

from core.errors import TributaryError


def run_cli(app: typer.Typer) -> None:
    try:
        # Standalone mode: usage errors are reported by click itself (with the usage line).
        app()
    except TributaryError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
