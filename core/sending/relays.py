"""SMTP relay settings per team, or per member overriding the team's.

The password is never stored: a relay names the environment variable that holds it, and the
process that sends reads it at send time. Only variables named `TRIBUTARY_RELAY_PASSWORD_*` can be
named: otherwise an admin could point a relay of their choosing at any secret of the process (the
Slack client secret, the database password) and have it sent in an SMTP login. Nothing here prints
or logs a secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, normalise_member_email
from core.errors import InvalidInput, NotFound
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import SmtpRelay
from storage.timeutil import as_utc, utcnow

_R = SmtpRelay.__table__
PASSWORD_ENV_PREFIX = "TRIBUTARY_RELAY_PASSWORD_"
_ENV_NAME = re.compile(r"^TRIBUTARY_RELAY_PASSWORD_[A-Za-z0-9_]{1,100}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")


@dataclass(frozen=True)
class RelayInfo:
    id: int
    team_id: int
    member_id: int | None
    host: str
    port: int
    username: str | None
    password_env: str | None
    starttls: bool
    from_address: str | None
    updated_at: datetime

    @property
    def password_is_set(self) -> bool:
        return bool(self.password_env and os.environ.get(self.password_env))

    def password(self) -> str | None:
        """Read the secret from this process's environment. Errors name the variable, never a value."""
        if not self.username:
            return None
        if not self.password_env:
            raise InvalidInput(f"SMTP relay {self.host}:{self.port}: a user is set but no password variable")
        if not _ENV_NAME.match(self.password_env):  # a row written before the prefix rule
            raise InvalidInput(
                f"SMTP relay {self.host}:{self.port}: password variable {self.password_env} is not a "
                f"{PASSWORD_ENV_PREFIX}* variable; set the relay again with one"
            )
        value = os.environ.get(self.password_env)
        if not value:
            raise InvalidInput(
                f"SMTP relay {self.host}:{self.port}: environment variable {self.password_env} is not set"
            )
        return value


class Relays:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    def set_relay(
        self,
        team_ref: int | str,
        *,
        host: str,
        port: int = 587,
        username: str | None = None,
        password_env: str | None = None,
        starttls: bool = True,
        from_address: str | None = None,
        member_ref: int | str | None = None,
        now: datetime | None = None,
    ) -> RelayInfo:
        now = as_utc(now or utcnow())
        team = self.accounts.team(team_ref)
        member = self.accounts.member(member_ref, team.id) if member_ref is not None else None
        host = (host or "").strip()
        if not _HOST.match(host):
            raise InvalidInput(f"relay host: {host!r} is not a host name or address")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidInput(f"relay port: must be between 1 and 65535, got {port!r}")
        if password_env is not None and not _ENV_NAME.match(password_env):
            raise InvalidInput(
                f"relay password variable: {password_env!r} must be named {PASSWORD_ENV_PREFIX}<NAME> "
                "(letters, digits, _): only those may be sent to a relay"
            )
        if username and not password_env:
            raise InvalidInput("relay password variable: required when a user is given (--password-env VAR)")
        if from_address:
            from_address = normalise_member_email(from_address)
        values = dict(
            team_id=team.id,
            member_id=member.id if member else None,
            scope=f"member:{member.id}" if member else f"team:{team.id}",
            host=host,
            port=port,
            username=username or None,
            password_env=password_env or None,
            starttls=bool(starttls),
            from_address=from_address or None,
            updated_at=now,
        )
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert

        def op(conn: Connection) -> int:
            conn.execute(insert(_R).values(**values).on_conflict_do_nothing(index_elements=["scope"]))
            conn.execute(update(_R).where(_R.c.scope == values["scope"]).values(**values))
            return conn.execute(select(_R.c.id).where(_R.c.scope == values["scope"])).scalar_one()

        relay_id = run_write(self.engine, op)
        with read_transaction(self.engine) as conn:
            return _info(conn.execute(select(_R).where(_R.c.id == relay_id)).one())

    def relay_for(self, team_id: int, member_id: int | None = None) -> RelayInfo:
        """The member's own relay if set, else the team's."""
        with read_transaction(self.engine) as conn:
            scopes = ([f"member:{member_id}"] if member_id is not None else []) + [f"team:{team_id}"]
            for scope in scopes:
                row = conn.execute(select(_R).where(_R.c.scope == scope)).one_or_none()
                if row is not None:
                    return _info(row)
        team = self.accounts.team(team_id)
        raise NotFound(f"team {team.name!r} has no SMTP relay: set one with `tributary relay set {team.name} ...`")

    def relays(self, team_ref: int | str) -> list[RelayInfo]:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_R).where(_R.c.team_id == team.id).order_by(_R.c.id)).all()
        return [_info(r) for r in rows]


def _info(row) -> RelayInfo:
    return RelayInfo(
        id=row.id,
        team_id=row.team_id,
        member_id=row.member_id,
        host=row.host,
        port=row.port,
        username=row.username,
        password_env=row.password_env,
        starttls=row.starttls,
        from_address=row.from_address,
        updated_at=as_utc(row.updated_at),
    )


__all__ = ["PASSWORD_ENV_PREFIX", "RelayInfo", "Relays"]
