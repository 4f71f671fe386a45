"""Who is asking: the Tributary team of the Slack workspace and the member behind the Slack user.

Resolved in the lazy listeners, after the ack, never in a middleware: nothing touches the database
(or waits on the enrichment writer) before Slack gets its HTTP answer. Matching a Slack user by
profile email needs a Web API call (users.info), so it happens on demand through `ensure_member`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.accounts import MemberInfo, TeamInfo
from core.errors import TributaryError
from core.services import Services

log = logging.getLogger(__name__)


class SlackUnreachable(TributaryError):
    """A Web API call this request needs failed to connect."""


@dataclass(frozen=True)
class SlackActor:
    slack_team_id: str | None
    slack_user_id: str | None
    team: TeamInfo | None  # None: the workspace is not connected to a Tributary team
    member: MemberInfo | None  # None: not (yet) known as a member; may look up, may not spend

    @property
    def is_admin(self) -> bool:
        return self.member is not None and self.member.is_admin


def resolve_actor(services: Services, slack_team_id: str | None, slack_user_id: str | None) -> SlackActor:
    link = services.slack_links.workspace(slack_team_id) if slack_team_id else None
    team = link.team if link else None
    member = None
    if team is not None and slack_user_id:
        member = services.slack_links.member_by_slack_user(team.id, slack_user_id)
    return SlackActor(slack_team_id, slack_user_id, team, member)


def actor_of(services: Services, context: BoltContext) -> SlackActor:
    """The actor of this request; call it from a lazy listener (it reads the database)."""
    return resolve_actor(services, context.team_id, context.user_id)


def profile_email(client: WebClient, slack_user_id: str) -> str | None:
    """The Slack user's profile email (needs the users:read.email scope), or None if Slack won't say."""
    try:
        response = client.users_info(user=slack_user_id)
    except SlackApiError as exc:
        log.warning("users.info for %s failed: %s", slack_user_id, exc.response.get("error"))
        return None
    except OSError as exc:  # Slack's Web API unreachable: say so, rather than "not a member"
        log.warning("users.info for %s: Slack Web API unreachable: %s", slack_user_id, exc)
        raise SlackUnreachable(
            "Slack could not be reached to match you to a Tributary member by your profile email; "
            "please try again in a moment"
        ) from None
    profile = (response.get("user") or {}).get("profile") or {}
    return profile.get("email") or None


def ensure_member(services: Services, actor: SlackActor, client: WebClient) -> SlackActor:
    """Match an unlinked Slack user to a member by profile email, and remember the link."""
    if actor.member is not None or actor.team is None or not actor.slack_user_id:
        return actor
    email = profile_email(client, actor.slack_user_id)
    if not email:
        return actor
    member = services.slack_links.member_by_email(actor.team.id, email)
    if member is None:
        return actor
    try:
        services.slack_links.link(actor.team.id, member.email, actor.slack_user_id)
    except TributaryError as exc:
        log.warning("could not link %s to %s: %s", actor.slack_user_id, member.email, exc)
    return replace(actor, member=member)
