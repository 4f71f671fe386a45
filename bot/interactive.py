"""Buttons: access an email or a mobile, pick a person from a candidate list.

Acknowledged at once; the data request runs in a lazy listener and the card is replaced in place
through the action's response_url. Paying twice is impossible by construction: DataRequests is
idempotent per (team, person, kind) and safe under concurrency, so a second press, a retry from
Slack (X-Slack-Retry-Num) or two people pressing together settle on one charge.
"""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import messages
from bot.identity import actor_of, ensure_member
from core.errors import InvalidInput, TributaryError
from core.ledger import InsufficientCredits
from core.people import resolve_person
from core.services import Services
from storage.models.enums import DataKind, Feature

log = logging.getLogger(__name__)


def _person_id(body: dict) -> int:
    value = ((body.get("actions") or [{}])[0]).get("value") or ""
    if not value.isdigit():
        raise InvalidInput(f"button: {value!r} is not a person id")
    return int(value)


def register(app: App, services: Services) -> None:
    def ack_action(ack: Ack) -> None:
        ack()

    def access(kind: DataKind):
        def run(body: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
            actor = actor_of(services, context)
            try:
                if actor.team is None:
                    raise InvalidInput("this Slack workspace is not connected to a Tributary team")
                actor = ensure_member(services, actor, client)
                if actor.member is None:
                    respond(
                        text=(
                            f":lock: You can look people up, but only members of team *{actor.team.name}* can spend "
                            "its credits. Ask an admin to run `/tributary link @you EMAIL`. Nothing was charged."
                        ),
                        replace_original=False,
                        response_type="ephemeral",
                    )
                    return
                person_id = _person_id(body)
                result = services.data_requests.access(
                    actor.team.id, actor.member.id, person_id, kind, feature=Feature.SLACK
                )
                person = resolve_person(services.engine, person_id)
                preview = services.person_previews.preview(actor.team.id, person)
                respond(
                    blocks=messages.person_card(preview, messages.Prices.of(actor.team), results=[result]),
                    text=messages.access_outcome(result),
                    replace_original=True,
                )
            except InsufficientCredits as exc:
                respond(
                    blocks=messages.insufficient_credits(exc.requested_credits, exc.available_credits, kind.value),
                    text=str(exc),
                    replace_original=False,
                    response_type="ephemeral",
                )
            except TributaryError as exc:
                respond(text=f":warning: {exc}", replace_original=False, response_type="ephemeral")
            except Exception:
                log.exception("access %s failed", kind.value)
                respond(
                    text=":boom: Something went wrong on our side; please try again.",
                    replace_original=False,
                    response_type="ephemeral",
                )

        run.__name__ = f"access_{kind.value}"
        return run

    def pick_person(body: dict, respond: Respond, context: BoltContext) -> None:
        actor = actor_of(services, context)
        try:
            if actor.team is None:
                raise InvalidInput("this Slack workspace is not connected to a Tributary team")
            person = resolve_person(services.engine, _person_id(body))
            preview = services.person_previews.preview(actor.team.id, person)
            respond(
                blocks=messages.person_card(preview, messages.Prices.of(actor.team)),
                text=person.full_name,
                replace_original=True,
            )
        except TributaryError as exc:
            respond(text=f":warning: {exc}", replace_original=False, response_type="ephemeral")

    app.action(messages.ACCESS_EMAIL)(ack=ack_action, lazy=[access(DataKind.EMAIL)])
    app.action(messages.ACCESS_MOBILE)(ack=ack_action, lazy=[access(DataKind.MOBILE)])
    app.action(re.compile(rf"^{messages.PICK_PERSON}:\d+$"))(ack=ack_action, lazy=[pick_person])
