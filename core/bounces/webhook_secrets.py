"""Each team's own bounce-webhook signing secret, stored encrypted (core.secrets.SecretBox).

A team's secret signs only that team's events (`POST /api/v1/events/bounces/<team>`), so a leaked
or hostile sending service of one team cannot touch another team's sends. The secret is created on
first use (`tributary bounces webhook-secret TEAM`) and replaced by `--rotate`; the old one stops
working at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select

from core.accounts import Accounts
from core.secrets import SecretBox
from storage.db import read_transaction, run_write
from storage.models import TeamWebhookSecret
from storage.timeutil import as_utc, utcnow

_W = TeamWebhookSecret.__table__
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


@dataclass(frozen=True)
class TeamSecret:
    team_id: int
    secret: str
    rotated_at: datetime

    def __repr__(self) -> str:  # never print the secret by accident
        return f"TeamSecret(team_id={self.team_id}, rotated_at={self.rotated_at.isoformat()})"


class WebhookSecrets:
    def __init__(self, engine: Engine, accounts: Accounts, box: Callable[[], SecretBox]) -> None:
        self.engine = engine
        self.accounts = accounts
        self._box = box  # built on first use: a deployment without keys still runs what needs none

    def show(self, team_ref: int | str, *, now: datetime | None = None) -> TeamSecret:
        """The team's secret, created if it has none yet."""
        team = self.accounts.team(team_ref)
        found = self.secret_of(team.id)
        return found if found is not None else self._write(team.id, replace=False, now=now)

    def rotate(self, team_ref: int | str, *, now: datetime | None = None) -> TeamSecret:
        team = self.accounts.team(team_ref)
        return self._write(team.id, replace=True, now=now)

    def secret_of(self, team_id: int) -> TeamSecret | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_W).where(_W.c.team_id == team_id)).one_or_none()
        if row is None:
            return None
        return TeamSecret(team_id, self._box().decrypt(row.secret_encrypted), as_utc(row.rotated_at))

    def _write(self, team_id: int, *, replace: bool, now: datetime | None) -> TeamSecret:
        now = as_utc(now or utcnow())
        fresh = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        encrypted = self._box().encrypt(fresh)

        def op(conn: Connection) -> None:
            exists = conn.execute(select(_W.c.team_id).where(_W.c.team_id == team_id).with_for_update()).first()
            if exists and not replace:
                return  # another caller created it first: theirs stands
            conn.execute(delete(_W).where(_W.c.team_id == team_id))
            conn.execute(insert(_W).values(team_id=team_id, secret_encrypted=encrypted, rotated_at=now))

        run_write(self.engine, op)
        found = self.secret_of(team_id)
        if found is None:
            raise RuntimeError("webhook secret vanished right after it was written")
        return found


__all__ = ["TeamSecret", "WebhookSecrets"]
