"""The services a command works with, built once per process from the settings."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import date
from enum import Enum
from functools import cached_property, lru_cache
from pathlib import PurePath
from typing import Any

import typer
from rich.console import Console

from core.services import Services, verifier_config
from core.verify.pipeline import EmailVerifier
from demo import mailworld as demo_mail


@lru_cache(maxsize=1)
def services() -> Services:
    svc = Services.from_settings()
    if demo_mail.wanted(svc.settings, svc.engine):
        return _DemoServices(settings=svc.settings, engine=svc.engine)
    return svc


def uses_demo_mail(svc: Services) -> bool:
    return isinstance(svc, _DemoServices)


class _DemoServices(Services):
    """The embedded demo: its verifier works against the demo mail world on loopback, started (for
    the life of the process) the first time something needs to verify."""

    @cached_property
    def email_verifier(self) -> EmailVerifier:
        world = demo_mail.start()
        return EmailVerifier(verifier_config(self.settings.model_copy(update=world.verifier_settings())))


def _default(value: Any) -> Any:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if is_dataclass(value):
        return asdict(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def echo_json(value: Any) -> None:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    typer.echo(json.dumps(value, default=_default, sort_keys=True))


# Piped or redirected, tables take the width they need: a file or `grep` has no screen edge to
# truncate cells at (rich would otherwise assume 80 columns).
PIPED_TABLE_WIDTH = 100_000


def echo_page(items: list[Any], next_cursor: str | None, line: Any, *, as_json: bool) -> None:
    """One keyset page: a JSON line per item then the cursor, or a text line per item then how to go on."""
    if as_json:
        for item in items:
            echo_json(item)
        echo_json({"next_cursor": next_cursor})
        return
    for item in items:
        typer.echo(line(item))
    typer.echo(f"next page: --cursor {next_cursor}" if next_cursor else "(last page)")


def table_console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=PIPED_TABLE_WIDTH, no_color=True)
