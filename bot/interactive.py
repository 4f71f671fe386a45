"""Buttons: access an email or a mobile, pick a person from a candidate list.

Acknowledged at once; the data request runs in a lazy listener and the card is replaced in place
through the action's response_url. Paying twice is impossible by construction: DataRequests is
idempotent per (team, person, kind) and safe under concurrency, so a second press, a retry from
Slack (X-Slack-Retry-Num) or two people pressing together settle on one charge.
"""

from __future__ import annotations

import re

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import messages
from bot.identity import SlackActor
from bot.listener import run_as_actor
from core.actors import require_look_up, require_spend
from core.errors import InvalidInput, NotFound
from core.ledger import InsufficientCredits
from core.people.resolve import MAX_PERSON_ID, resolve_person
from core.services import Services
from storage.models.enums import DataKind, Feature


def _person_id(body: dict) -> int:
    value = ((body.get("actions") or [{}])[0]).get("value") or ""
    if not value.isascii() or not value.isdigit():
        raise InvalidInput(f"button: {value[:40]!r} is not a person id")
    if int(value) > MAX_PERSON_ID:
        raise NotFound(f"no person has id {value}")
    return int(value)


def _ephemeral(respond: Respond):
    return lambda text: respond(text=text, replace_original=False, response_type="ephemeral")


def register(app: App, services: Services) -> None:
    def ack_action(ack: Ack) -> None:
        ack()

    def access(kind: DataKind):
        def work(who: SlackActor, body: dict, respond: Respond) -> None:
            person_id = _person_id(body)
            try:
                result = services.data_requests.access(
                    who.team.id, who.actor.member_id, person_id, kind, feature=Feature.SLACK
                )
            except InsufficientCredits as exc:
                respond(
                    blocks=messages.insufficient_credits(exc.requested_credits, exc.available_credits, kind.value),
                    text=str(exc),
                    replace_original=False,
                    response_type="ephemeral",
                )
                return
            person = resolve_person(services.engine, person_id)
            preview = services.person_previews.preview(who.team.id, person)
            respond(
                blocks=messages.person_card(preview, messages.Prices.of(who.team), results=[result]),
                text=messages.access_outcome(result),
                replace_original=True,
            )

        def run(body: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
            run_as_actor(
                services,
                context,
                client,
                _ephemeral(respond),
                lambda who: work(who, body, respond),
                rule=require_spend,
                what=f"access {kind.value}",
            )

        run.__name__ = f"access_{kind.value}"
        return run

    def pick_person(body: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
        def work(who: SlackActor) -> None:
            person = resolve_person(services.engine, _person_id(body))
            preview = services.person_previews.preview(who.team.id, person)
            respond(
                blocks=messages.person_card(preview, messages.Prices.of(who.team)),
                text=person.full_name,
                replace_original=True,
            )

        run_as_actor(services, context, client, _ephemeral(respond), work, rule=require_look_up, what="pick person")

    app.action(messages.ACCESS_EMAIL)(ack=ack_action, lazy=[access(DataKind.EMAIL)])
    app.action(messages.ACCESS_MOBILE)(ack=ack_action, lazy=[access(DataKind.MOBILE)])
    app.action(re.compile(rf"^{messages.PICK_PERSON}:\d+$"))(ack=ack_action, lazy=[pick_person])
