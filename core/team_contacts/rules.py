"""Who may do what with team contacts. One rule, in core (to move into core.actors)."""

from __future__ import annotations

from core.accounts import MemberInfo
from core.errors import TributaryError


class NotPermitted(TributaryError):
    http_status = 403


def may_reassign(actor: MemberInfo, current_owner_id: int | None) -> bool:
    """Admins assign any contact of their team; a member only the contacts they own."""
    return actor.is_admin or (current_owner_id is not None and current_owner_id == actor.id)
