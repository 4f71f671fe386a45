"""The steps every lazy listener shares: find the actor, ask core's rule, do the work, answer errors.

Listeners pass their work and the rule it needs; refusals and errors are answered the same way
everywhere: an outsider is told only to ask an admin to link them (nothing of the team is shown), an
unconnected workspace how to connect, any other `TributaryError` its message, anything else a
generic apology (logged with its traceback, never shown).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.identity import SlackActor, find_actor
from core.actors import Actor
from core.errors import NotAMember, NotFound, TributaryError
from core.services import Services

NOT_CONNECTED = (
    "this Slack workspace is not connected to a Tributary team: an admin of the team makes a code on the "
    "server with `tributary slack connect-code TEAM` and runs `/tributary connect CODE` here"
)
SOMETHING_WENT_WRONG = ":boom: Something went wrong on our side; please try again."
log = logging.getLogger(__name__)

Rule = Callable[[Actor], None]
Work = Callable[[SlackActor], None]


def not_linked(who: SlackActor) -> str:
    team = f" *{who.team.name}*" if who.team else ""
    return (
        f":lock: You are not linked to a member of team{team}: ask an admin to link you "
        "(`/tributary link @you EMAIL`). Nothing was shown or charged."
    )


def refusal(who: SlackActor | None, exc: TributaryError) -> str:
    """What a user reads when refused or when a request fails on their side."""
    if who is not None and isinstance(exc, NotAMember):
        return f":warning: {NOT_CONNECTED}" if who.team is None else not_linked(who)
    return f":warning: {exc}"


def run_as_actor(
    services: Services,
    context: BoltContext,
    client: WebClient,
    reply: Callable[[str], None],
    work: Work,
    *,
    rule: Rule | None = None,
    what: str,
) -> None:
    """Find the actor, check `rule` (skipped when None: the work checks its own), run `work`, answer."""
    who: SlackActor | None = None
    try:
        who = find_actor(services, context, client)
        if rule is not None:
            if who.team is None:
                raise NotFound(NOT_CONNECTED)
            rule(who.actor)
        work(who)
    except TributaryError as exc:
        reply(refusal(who, exc))
    except Exception:
        log.exception("%s failed", what)
        reply(SOMETHING_WENT_WRONG)


__all__ = ["NOT_CONNECTED", "SOMETHING_WENT_WRONG", "not_linked", "refusal", "run_as_actor"]
