"""Which Tributary team a Slack workspace belongs to, and which member a Slack user is.

Slack-agnostic on purpose (plain ids and emails; no Slack library): the bot resolves Slack users'
profile emails itself and asks this service to record what it learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, MemberInfo, TeamInfo, normalise_member_email
from core.errors import InvalidInput, NotFound, TributaryError
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import Member, SlackWorkspace
from storage.models.enums import Role
from storage.timeutil import as_utc, utcnow

_WS = SlackWorkspace.__table__
_MEMBER = Member.__table__
MAX_SLACK_ID_LENGTH = 32


class NotAnAdmin(TributaryError):
    pass


@dataclass(frozen=True)
class WorkspaceLink:
    slack_team_id: str
    team: TeamInfo
    connected_at: datetime


def _check_slack_id(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_SLACK_ID_LENGTH or not value.isalnum():
        raise InvalidInput(f"{what}: {value!r} is not a Slack id (letters and digits, at most {MAX_SLACK_ID_LENGTH})")
    return value


class SlackLinks:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    # workspaces

    def connect(self, slack_team_id: str, team_ref: int | str, *, by_member: MemberInfo | None = None) -> WorkspaceLink:
        """Connect (or move) a workspace to a team. From Slack, `by_member` must be one of its admins."""
        slack_team_id = _check_slack_id(slack_team_id, "Slack workspace id")
        team = self.accounts.team(team_ref)
        if by_member is not None and (by_member.team_id != team.id or not by_member.is_admin):
            raise NotAnAdmin(f"only an admin of team {team.name!r} can connect this workspace to it")
        now = utcnow()
        values = dict(
            slack_team_id=slack_team_id,
            team_id=team.id,
            connected_by_member_id=by_member.id if by_member else None,
            connected_at=now,
        )

        def op(conn: Connection) -> None:
            insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
            stmt = insert(_WS).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["slack_team_id"],
                    set_=dict(
                        team_id=team.id, connected_by_member_id=values["connected_by_member_id"], connected_at=now
                    ),
                )
            )

        run_write(self.engine, op)
        return WorkspaceLink(slack_team_id, team, now)

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


__all__ = ["NotAnAdmin", "SlackLinks", "WorkspaceLink"]
