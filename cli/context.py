"""The services a command works with, built once per process from the settings."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache
from pathlib import PurePath
from typing import Any

import typer

from core.services import Services


@lru_cache(maxsize=1)
def services() -> Services:
    return Services.from_settings()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
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
