"""The App Home tab, published (views.publish) whenever a user opens it."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot import messages
from bot.identity import actor_of, ensure_member
from core.services import Services
from storage.timeutil import utcnow

HOME_EVENT = "app_home_opened"
RECENT_ACCESSES = 10
RECENT_REFUNDS = 10
log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def ack_event(ack: Ack) -> None:
        ack()

    def publish_home(event: dict, context: BoltContext, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        actor = actor_of(services, context)
        if actor.team is None:
            view = messages.home_view(None, [], [], None)
        else:
            actor = ensure_member(services, actor, client)
            member_id = actor.member.id if actor.member else None
            overview = services.credit_overviews.overview(actor.team.id, member_id)
            accesses = (
                services.credit_overviews.recent_accesses(actor.team.id, member_id=member_id, limit=RECENT_ACCESSES)
                if member_id is not None
                else []
            )
            refunds = (
                services.credit_overviews.refunds(actor.team.id, member_id=member_id, limit=RECENT_REFUNDS)
                if member_id is not None
                else []
            )
            team_usage = None
            if actor.is_admin:
                team_usage = services.credit_overviews.spend_by_member(
                    actor.team.id, since=overview.cycle.starts_at, until=utcnow()
                )
            problem = None if member_id is not None else "You are not linked to a member of this team."
            view = messages.home_view(overview, accesses, refunds, team_usage, problem=problem)
        client.views_publish(user_id=actor.slack_user_id or event["user"], view=view)

    app.event(HOME_EVENT)(ack=ack_event, lazy=[publish_home])
