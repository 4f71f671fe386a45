"""The App Home tab, published (views.publish) whenever a user opens it.

Members see the team's balance, their accesses and refunds; admins also the team's usage. Anyone
else (an unlinked user, an unconnected workspace) sees only how to get in: nothing of the team.
"""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot import messages
from bot.identity import SlackActor
from bot.listener import run_as_actor
from core.actors import allows, require_see_balance, require_see_usage
from core.services import Services
from storage.timeutil import utcnow

HOME_EVENT = "app_home_opened"
RECENT_ACCESSES = 10
RECENT_REFUNDS = 10


def _member_view(services: Services, who: SlackActor):
    team_id, member_id = who.team.id, who.actor.member_id
    overview = services.credit_overviews.overview(team_id, member_id)
    accesses = services.credit_overviews.recent_accesses(team_id, member_id=member_id, limit=RECENT_ACCESSES)
    refunds = services.credit_overviews.refunds(team_id, member_id=member_id, limit=RECENT_REFUNDS)
    team_usage = None
    if allows(require_see_usage, who.actor):
        team_usage = services.credit_overviews.spend_by_member(team_id, since=overview.cycle.starts_at, until=utcnow())
    return messages.home_view(overview, accesses, refunds, team_usage)


def register(app: App, services: Services) -> None:
    def ack_event(ack: Ack) -> None:
        ack()

    def publish_home(event: dict, context: BoltContext, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = context.user_id or event["user"]

        def publish_problem(text: str) -> None:
            client.views_publish(user_id=user_id, view=messages.home_view(None, [], [], None, problem=text))

        def publish(who: SlackActor) -> None:
            client.views_publish(user_id=user_id, view=_member_view(services, who))

        run_as_actor(services, context, client, publish_problem, publish, rule=require_see_balance, what="App Home")

    app.event(HOME_EVENT)(ack=ack_event, lazy=[publish_home])
