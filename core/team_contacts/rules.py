"""Who may do what with team contacts and accounts: core.actors' rules, asked for a member."""

from __future__ import annotations

from core.accounts import MemberInfo
from core.actors import Actor, Channel, allows, require_reassign
from core.errors import TributaryError


class NotPermitted(TributaryError):
    http_status = 403


def member_actor(member: MemberInfo) -> Actor:
    """The actor a member's call acts as. These rules depend on role and ownership only, so the
    channel (which the services are not told) is recorded as the CLI's."""
    return Actor.of_member(member.team_id, member.id, member.is_admin, Channel.CLI)


def may_reassign(actor: MemberInfo, current_owner_id: int | None) -> bool:
    """Admins assign any contact or account of their team; a member only the ones they own."""
    return allows(require_reassign, member_actor(actor), current_owner_id, "reassign")
