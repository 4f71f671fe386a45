"""Which Tributary team a Slack workspace belongs to, and which member a Slack user is.

Slack-agnostic on purpose (plain ids and emails; no Slack library): the bot resolves Slack users'
profile emails itself and asks this service to record what it learned.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, MemberInfo, TeamInfo, normalise_member_email
from core.actors import Actor, Channel, require_connect_workspace
from core.errors import InvalidInput, NotFound, TributaryError
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import Member, SlackConnectCode, SlackWorkspace
from storage.models.enums import Role
from storage.timeutil import as_utc, utcnow

_WS = SlackWorkspace.__table__
_MEMBER = Member.__table__
_CODE = SlackConnectCode.__table__
MAX_SLACK_ID_LENGTH = 32
CONNECT_CODE_TTL_S = 15 * 60
# Typed by hand in Slack: no 0/O, 1/I/L. 12 of 31 symbols is ~59 bits, plenty for a 15-minute code.
CONNECT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CONNECT_CODE_LENGTH = 12
BAD_CODE = (
    "connect: that code is unknown, used or expired; an admin of the team makes a new one on the server "
    "with `tributary slack connect-code TEAM`"
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkspaceLink:
    slack_team_id: str
    team: TeamInfo
    connected_at: datetime


@dataclass(frozen=True)
class Identity:
    """Who a Slack user is for Tributary: the actor the rules judge, and the team and member behind it."""

    actor: Actor
    team: TeamInfo | None  # None: the workspace is connected to no team
    member: MemberInfo | None  # None: an outsider (not linked, no confirmed email of a member)


@dataclass(frozen=True)
class ConnectCode:
    code: str  # shown once, never stored
    team: TeamInfo
    expires_at: datetime


def _code_hash(code: str) -> str:
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def _check_slack_id(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_SLACK_ID_LENGTH or not value.isalnum():
        raise InvalidInput(f"{what}: {value!r} is not a Slack id (letters and digits, at most {MAX_SLACK_ID_LENGTH})")
    return value


class Identities:
    """Front-end identities to teams and members: workspaces by link or one-time code, users by link or
    confirmed email, a team's admins. Slack is today's only front end with such ids."""

    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    # workspaces

    def connect(self, slack_team_id: str, team_ref: int | str) -> WorkspaceLink:
        """Connect (or move) a workspace to a team: the operator's path (CLI). Slack uses connect_with_code."""
        slack_team_id = _check_slack_id(slack_team_id, "Slack workspace id")
        team = self.accounts.team(team_ref)
        now = utcnow()
        run_write(self.engine, lambda conn: self._upsert_workspace(conn, slack_team_id, team.id, None, now))
        return WorkspaceLink(slack_team_id, team, now)

    def create_connect_code(self, team_ref: int | str) -> ConnectCode:
        """A one-time code that connects one workspace to the team; kept hashed, valid 15 minutes."""
        team = self.accounts.team(team_ref)
        raw = "".join(secrets.choice(CONNECT_CODE_ALPHABET) for _ in range(CONNECT_CODE_LENGTH))
        code = "-".join(raw[i : i + 4] for i in range(0, CONNECT_CODE_LENGTH, 4))
        now = utcnow()
        expires_at = now + timedelta(seconds=CONNECT_CODE_TTL_S)
        values = dict(code_hash=_code_hash(code), team_id=team.id, created_at=now, expires_at=expires_at)
        run_write(self.engine, lambda conn: conn.execute(_CODE.insert().values(**values)))
        return ConnectCode(code, team, expires_at)

    def connect_with_code(self, slack_team_id: str, code: str, actor: Actor) -> WorkspaceLink:
        """Connect the workspace to the team that made `code` (used up); moving a connected one also needs
        an admin of its current team (`require_connect_workspace`)."""
        slack_team_id = _check_slack_id(slack_team_id, "Slack workspace id")
        if not code.strip() or len(code) > 4 * CONNECT_CODE_LENGTH:
            raise InvalidInput(BAD_CODE)
        now = utcnow()

        def op(conn: Connection) -> int:
            current = conn.execute(select(_WS.c.team_id).where(_WS.c.slack_team_id == slack_team_id)).scalar()
            require_connect_workspace(actor, current)
            team_id = conn.execute(
                update(_CODE)
                .where(_CODE.c.code_hash == _code_hash(code), _CODE.c.used_at.is_(None), _CODE.c.expires_at > now)
                .values(used_at=now, used_by_slack_team_id=slack_team_id)
                .returning(_CODE.c.team_id)
            ).scalar()
            if team_id is None:
                raise InvalidInput(BAD_CODE)
            self._upsert_workspace(conn, slack_team_id, team_id, actor.member_id if current == team_id else None, now)
            return team_id

        team_id = run_write(self.engine, op)
        return WorkspaceLink(slack_team_id, self.accounts.team(team_id), now)

    def _upsert_workspace(
        self, conn: Connection, slack_team_id: str, team_id: int, by_member_id: int | None, now: datetime
    ) -> None:
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
        stmt = insert(_WS).values(
            slack_team_id=slack_team_id, team_id=team_id, connected_by_member_id=by_member_id, connected_at=now
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["slack_team_id"],
                set_=dict(team_id=team_id, connected_by_member_id=by_member_id, connected_at=now),
            )
        )

    def workspace(self, slack_team_id: str) -> WorkspaceLink | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_WS).where(_WS.c.slack_team_id == slack_team_id)).one_or_none()
        if row is None:
            return None
        return WorkspaceLink(row.slack_team_id, self.accounts.team(row.team_id), as_utc(row.connected_at))

    def workspaces_of(self, team_id: int) -> list[str]:
        with read_transaction(self.engine) as conn:
            return list(
                conn.execute(
                    select(_WS.c.slack_team_id).where(_WS.c.team_id == team_id).order_by(_WS.c.connected_at)
                ).scalars()
            )

    # identities

    def identify(
        self, slack_team_id: str | None, slack_user_id: str | None, confirmed_email: Callable[[], str | None]
    ) -> Identity:
        """The actor behind a Slack user: linked member, else the member whose email Slack confirmed
        (`confirmed_email` is asked only then; the link is remembered), else an outsider."""
        link = self.workspace(slack_team_id) if slack_team_id else None
        if link is None:
            return Identity(Actor.outsider(None, Channel.SLACK), None, None)
        team = link.team
        member = self.member_by_slack_user(team.id, slack_user_id) if slack_user_id else None
        if member is None and slack_user_id:
            member = self._match_by_email(team, slack_user_id, confirmed_email())
        if member is None:
            return Identity(Actor.outsider(team.id, Channel.SLACK), team, None)
        return Identity(Actor.of_member(team.id, member.id, member.is_admin, Channel.SLACK), team, member)

    def _match_by_email(self, team: TeamInfo, slack_user_id: str, email: str | None) -> MemberInfo | None:
        member = self.member_by_email(team.id, email) if email else None
        if member is None:
            return None
        try:
            self.link(team.id, member.email, slack_user_id)
        except TributaryError as exc:
            log.warning("could not link %s to %s: %s", slack_user_id, member.email, exc)
        return member

    # members

    def member_by_slack_user(self, team_id: int, slack_user_id: str) -> MemberInfo | None:
        with read_transaction(self.engine) as conn:
            member_id = conn.execute(
                select(_MEMBER.c.id).where(_MEMBER.c.team_id == team_id, _MEMBER.c.slack_user_id == slack_user_id)
            ).scalar()
        return self.accounts.member(member_id) if member_id is not None else None

    def member_by_email(self, team_id: int, email: str) -> MemberInfo | None:
        try:
            email = normalise_member_email(email)
        except InvalidInput:
            return None
        with read_transaction(self.engine) as conn:
            member_id = conn.execute(
                select(_MEMBER.c.id).where(_MEMBER.c.team_id == team_id, func.lower(_MEMBER.c.email) == email)
            ).scalar()
        return self.accounts.member(member_id) if member_id is not None else None

    def slack_user_of(self, member_id: int) -> str | None:
        with read_transaction(self.engine) as conn:
            return conn.execute(select(_MEMBER.c.slack_user_id).where(_MEMBER.c.id == member_id)).scalar()

    def admins(self, team_id: int) -> list[MemberInfo]:
        return [m for m in self.accounts.members(team_id) if m.role == Role.ADMIN]

    def link(self, team_id: int, email: str, slack_user_id: str) -> MemberInfo:
        """Record that a Slack user is the member with this email; the user is unlinked from anyone else."""
        slack_user_id = _check_slack_id(slack_user_id, "Slack user id")
        member = self.member_by_email(team_id, email)
        if member is None:
            team = self.accounts.team(team_id)
            raise NotFound(f"{email!r} is not a member of team {team.name!r}")

        def op(conn: Connection) -> None:
            conn.execute(
                update(_MEMBER)
                .where(_MEMBER.c.team_id == team_id, _MEMBER.c.slack_user_id == slack_user_id)
                .values(slack_user_id=None)
            )
            conn.execute(update(_MEMBER).where(_MEMBER.c.id == member.id).values(slack_user_id=slack_user_id))

        run_write(self.engine, op)
        return member


__all__ = ["ConnectCode", "Identity", "Identities", "WorkspaceLink"]
