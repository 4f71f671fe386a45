"""Errors become one clear line on stderr and a non-zero exit code, never a traceback."""

from __future__ import annotations

import sys

import typer

from core.errors import TributaryError

EXIT_USER_ERROR = 2


def run_cli(app: typer.Typer) -> None:
    try:
        app(standalone_mode=False)
    except TributaryError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
