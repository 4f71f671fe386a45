"""Who is asking: the Tributary actor behind a Slack user, decided by core (`Identities.identify`).

Resolved in the lazy listeners, after the ack, never in a middleware: nothing touches the database
(or waits on the enrichment writer) before Slack gets its HTTP answer. A Slack user not yet linked is
matched by profile email only when Slack says the email is confirmed (users.info
`is_email_confirmed`): anyone can type any address into an unconfirmed profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.accounts import MemberInfo, TeamInfo
from core.actors import Actor
from core.errors import TributaryError
from core.services import Services

log = logging.getLogger(__name__)


class SlackUnreachable(TributaryError):
    """A Web API call this request needs failed to connect."""


@dataclass(frozen=True)
class SlackActor:
    slack_team_id: str | None
    slack_user_id: str | None
    actor: Actor  # what core's rules judge
    team: TeamInfo | None  # None: the workspace is not connected to a Tributary team
    member: MemberInfo | None  # None: an outsider, who sees nothing of the team

    @property
    def is_admin(self) -> bool:
        return self.member is not None and self.member.is_admin


def confirmed_email(client: WebClient, slack_user_id: str) -> str | None:
    """The Slack user's profile email if Slack confirmed it (needs users:read.email), else None."""
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
    user = response.get("user") or {}
    if user.get("is_email_confirmed") is not True:
        return None
    return (user.get("profile") or {}).get("email") or None


def find_actor(services: Services, context: BoltContext, client: WebClient) -> SlackActor:
    """The actor of this request; call it from a lazy listener (it reads the database, may call users.info)."""
    slack_team_id, slack_user_id = context.team_id, context.user_id
    identity = services.identities.identify(
        slack_team_id, slack_user_id, lambda: confirmed_email(client, slack_user_id) if slack_user_id else None
    )
    return SlackActor(slack_team_id, slack_user_id, identity.actor, identity.team, identity.member)
