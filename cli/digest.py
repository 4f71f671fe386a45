"""`tributary digest TEAM --period daily|weekly` and `tributary digest prefs TEAM MEMBER --period P`."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from cli.context import services
from cli.credits import parse_date
from core.errors import InvalidInput
from core.usage.chart import render_chart
from core.usage.digest import UsageDigest
from core.usage.text import render_text
from storage.models.digests import DigestPeriod


class _DefaultShowGroup(TyperGroup):
    """`digest TEAM ...` means `digest show TEAM ...`: the digest itself is the common case."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


digest_app = typer.Typer(
    cls=_DefaultShowGroup,
    help="Usage digests: `digest TEAM --period weekly`, and admins' digest preferences (`digest prefs`).",
    no_args_is_help=True,
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Fraction):
        return float(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _digest_json(digest: UsageDigest) -> str:
    body = asdict(digest)
    body["forecast"]["credits_per_day"] = digest.forecast.credits_per_day
    body["forecast"]["window_days"] = digest.forecast.window_days
    body["forecast"]["beyond_horizon"] = digest.forecast.beyond_horizon
    return json.dumps(body, default=_json_default, sort_keys=True)


@digest_app.command("show")
def digest_show(
    team: str,
    period: str = typer.Option("weekly", "--period", help="daily or weekly (weeks start on Monday, UTC)."),
    at: str | None = typer.Option(None, "--at", help="A date in the period to show (default: the current one)."),
    as_json: bool = typer.Option(False, "--json"),
    chart: Path | None = typer.Option(None, "--chart", help="Also write a PNG of daily spend by category here."),
) -> None:
    """Credits spent by category, member and feature; refunds; balance and run-out date."""
    if chart is not None and chart.suffix.lower() != ".png":
        raise InvalidInput(f"--chart: {str(chart)!r} must be a .png file")
    digest = services().usage_digests.build(team, period, at=parse_date(at, "--at") if at else None)
    if chart is not None:
        try:
            chart.write_bytes(render_chart(digest))
        except OSError as exc:
            raise InvalidInput(f"--chart: cannot write {str(chart)!r}: {exc.strerror}") from None
    typer.echo(_digest_json(digest) if as_json else render_text(digest), nl=as_json)


@digest_app.command("prefs")
def digest_prefs(
    team: str,
    member: str,
    period: str = typer.Option(..., "--period", help="daily, weekly or off."),
) -> None:
    """Choose how often an admin receives the team's usage digest."""
    pref = services().digest_deliveries.set_preference(team, member, period)
    wanted = "no digest" if pref.period == DigestPeriod.OFF else f"the {pref.period.value} digest"
    typer.echo(f"{pref.member_email} gets {wanted} of team {team}")


def register(app: typer.Typer) -> None:
    app.add_typer(digest_app, name="digest")
