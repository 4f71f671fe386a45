"""Errors become one clear line on stderr and exit code 2, never a traceback or a boxed panel.

Usage errors (a missing argument, an unknown option, a value out of range) name the command and the
parameter; errors core raises say what is wrong and where; settings and database errors say which
setting or which server, and what to do.
"""

from __future__ import annotations

import sys
import typing

import typer
import typer.main
from sqlalchemy.exc import DBAPIError
from typer import models
from typer._click import exceptions as click_exceptions

from core.database_errors import explain_database_error
from core.errors import TributaryError
from core.ledger import MAX_AMOUNT_CREDITS
from core.settings import get_settings

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
# Whole numbers on the command line end up in 64-bit columns: refuse larger ones as a usage error
# naming the option, before anything runs.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fail(message: str, exit_code: int = USAGE_EXIT_CODE) -> typing.NoReturn:
    # One line whatever the message holds (a path or a server's reply may carry newlines).
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(exit_code)


def _bound_integer_parameters(app: typer.Typer) -> None:
    """Give every int option and argument without a range the 64-bit range (credits: the ledger's)."""
    infos = [*app.registered_commands, *([app.registered_callback] if app.registered_callback else [])]
    for info in infos:
        if info.callback is not None:
            _bound_callback(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _bound_integer_parameters(group.typer_instance)


def _bound_callback(callback: typing.Callable) -> None:
    hints = typing.get_type_hints(callback)
    defaults = getattr(callback, "__defaults__", None) or ()
    names = callback.__code__.co_varnames[: callback.__code__.co_argcount]
    for name, default in zip(names[len(names) - len(defaults) :], defaults, strict=True):
        hint = hints.get(name)
        if not isinstance(default, models.ParameterInfo) or int not in (hint, *typing.get_args(hint)):
            continue
        # An amount of credits (`--max-credits`, `--credits`) is refused beyond what one ledger amount
        # may be, naming the option rather than in the ledger's words.
        ceiling = MAX_AMOUNT_CREDITS if name.endswith("credits") else INT64_MAX
        default.min = INT64_MIN if default.min is None else default.min
        default.max = ceiling if default.max is None else default.max


def _usage_line(exc: click_exceptions.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx is not None else "tributary"
    return f"{where}: {exc.format_message()} (see {where} --help)"


def run_cli(app: typer.Typer) -> None:
    _bound_integer_parameters(app)
    command = typer.main.get_command(app)
    try:
        outcome = command.main(prog_name="tributary", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a bare group: its help, as click would
        sys.exit(USAGE_EXIT_CODE)
    except click_exceptions.UsageError as exc:
        fail(_usage_line(exc))
    except click_exceptions.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        fail("interrupted", INTERRUPTED_EXIT_CODE)
    except TributaryError as exc:
        fail(str(exc), exc.exit_code)
    except DBAPIError as exc:
        explained = explain_database_error(exc, get_settings().database_url)
        if explained is None:
            raise
        fail(explained)
    sys.exit(outcome if isinstance(outcome, int) else 0)
