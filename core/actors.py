"""Who is asking, and what they may do: one set of rules every front end asks.

An `Actor` is a team (or none, for someone in an unconnected Slack workspace), the member behind the
request (or None), a role, and how they proved it (the channel). Each rule is one function that
returns None when allowed and raises `AccessDenied` saying who may, so front ends never decide.

Roles:
- operator: whoever runs the server's CLI; acts for any team (has shell access to the database anyway).
- admin / member: a member of the team, with the member's role.
- outsider: someone the team has not vouched for (an unlinked Slack user, an unconnected workspace).
  Outsiders see nothing of a team: no balance, no spend, no purchased data, no lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import AccessDenied, InvalidInput, NotAMember


class Role(StrEnum):
    OPERATOR = "operator"
    ADMIN = "admin"
    MEMBER = "member"
    OUTSIDER = "outsider"


class Channel(StrEnum):
    """How the actor authenticated."""

    SLACK = "slack"  # a signed Slack request; the member by link or by confirmed Slack email
    SHEETS = "sheets"  # a verified Google ID token
    API = "api"  # a hashed API key
    CLI = "cli"  # shell access on the server


@dataclass(frozen=True)
class Actor:
    team_id: int | None  # None only for an outsider whose workspace is connected to no team
    member_id: int | None  # None for operators and outsiders
    role: Role
    channel: Channel

    def __post_init__(self) -> None:
        if self.role in (Role.ADMIN, Role.MEMBER) and (self.team_id is None or self.member_id is None):
            raise InvalidInput(f"actor: a {self.role.value} needs a team and a member")
        if self.role in (Role.OPERATOR, Role.OUTSIDER) and self.member_id is not None:
            raise InvalidInput(f"actor: an {self.role.value} is not a member")

    @classmethod
    def operator(cls, team_id: int | None = None) -> Actor:
        return cls(team_id, None, Role.OPERATOR, Channel.CLI)

    @classmethod
    def outsider(cls, team_id: int | None, channel: Channel) -> Actor:
        return cls(team_id, None, Role.OUTSIDER, channel)

    @classmethod
    def of_member(cls, team_id: int, member_id: int, is_admin: bool, channel: Channel) -> Actor:
        return cls(team_id, member_id, Role.ADMIN if is_admin else Role.MEMBER, channel)

    @property
    def is_member(self) -> bool:
        return self.role in (Role.ADMIN, Role.MEMBER)

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPERATOR)


NOT_A_MEMBER = "you are not linked to a member of this team: ask an admin to link you"

_MEMBERS = (Role.OPERATOR, Role.ADMIN, Role.MEMBER)
_ADMINS = (Role.OPERATOR, Role.ADMIN)


def _require(actor: Actor, roles: tuple[Role, ...], what: str) -> None:
    if actor.role in roles:
        return
    if actor.role == Role.OUTSIDER:
        raise NotAMember(f"{what}: {NOT_A_MEMBER}")
    if Role.ADMIN in roles:
        raise AccessDenied(f"{what}: only admins of the team can do this")
    raise AccessDenied(f"{what}: only the server's operator can do this (on the CLI)")


def require_look_up(actor: Actor) -> None:
    """Look people up (a free preview): members only, so the preview is no free oracle for strangers."""
    _require(actor, _MEMBERS, "lookup")


def require_spend(actor: Actor) -> None:
    """Spend the team's credits (access an email or a mobile)."""
    _require(actor, _MEMBERS, "spending credits")


def require_see_balance(actor: Actor) -> None:
    """See the team's balance, cycle and what it already bought."""
    _require(actor, _MEMBERS, "credits")


def require_see_usage(actor: Actor) -> None:
    """See the team's spend by member (and any member's usage)."""
    _require(actor, _ADMINS, "usage")


def require_link_member(actor: Actor) -> None:
    """Link another person's front-end identity (a Slack user) to a member: an admin vouches for them."""
    _require(actor, _ADMINS, "link")


def require_connect_workspace(actor: Actor, connected_team_id: int | None) -> None:
    """Connect a workspace to a team. A fresh one needs only the team's one-time code (checked by the
    caller); one already connected may be moved only by an admin of the team it is connected to."""
    if connected_team_id is None or actor.role == Role.OPERATOR:
        return
    if actor.team_id == connected_team_id and actor.role == Role.ADMIN:
        return
    raise AccessDenied("connect: this workspace is already connected; only an admin of its team can move it")


def require_change_plan(actor: Actor) -> None:
    """Change the team's plan (what it pays for): the operator, who runs billing."""
    _require(actor, (Role.OPERATOR,), "plan")


def require_manage_sources(actor: Actor) -> None:
    """Configure the team's waterfall sources and validation step."""
    _require(actor, _ADMINS, "sources")


def require_manage_keys(actor: Actor, key_member_id: int | None) -> None:
    """Create or revoke API keys: a member their own, an admin anyone's in the team."""
    if actor.is_member and key_member_id is not None and key_member_id == actor.member_id:
        return
    _require(actor, _ADMINS, "API keys")


def require_reassign(actor: Actor, current_owner_id: int | None, what: str) -> None:
    """Give a contact or an account to another owner: an admin any of the team's, a member only
    what they own (an unowned one is an admin's to give)."""
    if actor.is_member and current_owner_id is not None and current_owner_id == actor.member_id:
        return
    if actor.role == Role.MEMBER:
        raise AccessDenied(f"{what}: only its owner or an admin may reassign it")
    _require(actor, _ADMINS, what)


def require_manage_mailbox(actor: Actor, mailbox_member_id: int, *, removal: bool = False) -> None:
    """Connect, sync or mark private a connected mailbox: its own member (or the operator). An admin may
    also disconnect one, since removing data never exposes any."""
    if actor.is_member and actor.member_id == mailbox_member_id:
        return
    _require(actor, _ADMINS if removal else (Role.OPERATOR,), "mailbox")


def allows(rule: Callable[..., None], actor: Actor, *args: object) -> bool:
    """Whether `rule` lets the actor through (for showing or hiding parts of a view)."""
    try:
        rule(actor, *args)
    except AccessDenied:
        return False
    return True


__all__ = [
    "NOT_A_MEMBER",
    "Actor",
    "Channel",
    "Role",
    "allows",
    "require_change_plan",
    "require_connect_workspace",
    "require_link_member",
    "require_look_up",
    "require_manage_keys",
    "require_manage_mailbox",
    "require_manage_sources",
    "require_reassign",
    "require_see_balance",
    "require_see_usage",
    "require_spend",
]
