"""`/tributary …`: acknowledged at once, the work done in a lazy listener that answers via respond.

Sub-commands: lookup, credits, usage, help, connect, link. Slack escapes users, links and emails in
the command text (`should_escape` in the manifest): `<@U123|jane>`, `<https://…>`, `<mailto:a@b|a@b>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import accounts, contacts, messages
from bot.identity import SlackActor, confirmed_email
from bot.listener import NOT_CONNECTED, run_as_actor
from core.actors import require_link_member, require_look_up, require_see_balance, require_see_usage
from core.errors import InvalidInput, NotFound
from core.people.lookup import LookupQuery, find_people
from core.people.resolve import canonical_linkedin_url
from core.services import Services
from storage.timeutil import utcnow

COMMAND = "/tributary"
SUBCOMMANDS = ("lookup", "credits", "usage", "help", "connect", "link", "contacts", "accounts")
MAX_TEXT_CHARS = 1000
_ESCAPED = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")
_AT = re.compile(r"\s+at\s+", re.IGNORECASE)
_USER = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")
LOOKUP_WINDOW_S = 60  # TRIBUTARY_SLACK_LOOKUPS_PER_MINUTE counts lookups per member in this window
# Codes are ~59 bits, so guessing is hopeless anyway; this keeps a script from trying.
MAX_CONNECT_ATTEMPTS_PER_MINUTE = 10


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    argument: str


def parse(text: str) -> ParsedCommand:
    text = (text or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"command text: longer than {MAX_TEXT_CHARS} characters")
    if not text:
        return ParsedCommand("help", "")
    name, _, argument = text.partition(" ")
    name = name.lower()
    if name not in SUBCOMMANDS:
        raise InvalidInput(f"unknown command {name!r}: try {', '.join(SUBCOMMANDS)}")
    return ParsedCommand(name, argument.strip())


def unescape(text: str) -> str:
    """`<mailto:a@b|a@b>` -> a@b, `<https://x>` -> https://x; user mentions stay as they are."""

    def plain(match: re.Match) -> str:
        target = match.group(1)
        if target.startswith("@") or target.startswith("#") or target.startswith("!"):
            return match.group(0)
        return target.removeprefix("mailto:")

    return _ESCAPED.sub(plain, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def lookup_query(argument: str) -> LookupQuery:
    text = unescape(argument).strip()
    if not text:
        raise InvalidInput("lookup: give a name (Jane Doe at Acme), an email address or a LinkedIn URL")
    if " " not in text and ("@" in text or text.isdigit() or canonical_linkedin_url(text)):
        return LookupQuery(ref=text)
    if canonical_linkedin_url(text) is None and "linkedin.com" in text.lower():
        raise InvalidInput(f"lookup: {text!r} is not a LinkedIn profile URL (https://www.linkedin.com/in/…)")
    parts = _AT.split(text)
    if len(parts) > 1:
        return LookupQuery(name=" at ".join(parts[:-1]).strip(), company=parts[-1].strip())
    return LookupQuery(name=text)


def mentioned_user(token: str) -> str | None:
    match = _USER.match(token.strip())
    return match.group(1) if match else None


# ---- listeners ---------------------------------------------------------------------------


def register(app: App, services: Services) -> None:
    def ack_command(ack: Ack, command: dict) -> None:
        try:
            parsed = parse(command.get("text", ""))
        except InvalidInput as exc:
            ack(blocks=messages.help_message(f":warning: {exc}"), text=str(exc))
            return
        if parsed.name == "help":
            ack(blocks=messages.help_message(), text="Tributary help")
        else:
            ack()

    def run_command(command: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
        try:
            parsed = parse(command.get("text", ""))
        except InvalidInput:
            return  # already answered in the ack
        if parsed.name == "help":
            return
        handler, rule = _HANDLERS[parsed.name]
        run_as_actor(
            services,
            context,
            client,
            lambda text: respond(text=text, replace_original=False),
            lambda who: handler(services, who, parsed.argument, respond, client),
            rule=rule,
            what=f"/tributary {parsed.name}",
        )

    app.command(COMMAND)(ack=ack_command, lazy=[run_command])


def _lookup(services: Services, who: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    query = lookup_query(argument)
    services.rate_limits.hit(
        f"slack-lookup:{who.actor.member_id}",
        limit=services.settings.slack_lookups_per_minute,
        window_s=LOOKUP_WINDOW_S,
        what="lookups",
    )
    people = find_people(services.engine, query, team_id=who.team.id)
    previews = [services.person_previews.for_lookup(who.team.id, query, p) for p in people]
    if len(previews) == 1:
        prices = messages.Prices.of(who.team)
        respond(blocks=messages.person_card(previews[0], prices), text=previews[0].person.full_name)
    else:
        label = query.name + (f" at {query.company}" if query.company else "")
        respond(blocks=messages.candidate_list(previews, label), text=f"{len(previews)} people match {label}")


def _credits(services: Services, who: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    overview = services.credit_overviews.overview(who.team.id, who.actor.member_id)
    respond(blocks=messages.credits_message(overview), text=f"{overview.balance.available_credits} credits available")


def _usage(services: Services, who: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    cycle = services.accounts.current_cycle(who.team.id)
    spends = services.credit_overviews.spend_by_member(who.team.id, since=cycle.starts_at, until=utcnow())
    label = None
    if argument:
        slack_user = mentioned_user(argument)
        if slack_user is None:
            raise InvalidInput(f"usage: {argument!r} is not a Slack user (mention them: `/tributary usage @jane`)")
        member = services.identities.member_by_slack_user(who.team.id, slack_user)
        if member is None:
            raise NotFound(f"usage: <@{slack_user}> is not linked to a member of team {who.team.name!r}")
        spends = [s for s in spends if s.member_id == member.id]
        label = member.email
    respond(blocks=messages.usage_message(who.team, cycle, spends, who=label), text="Usage this cycle")


def _connect(services: Services, who: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    code = argument.strip()
    if not code:
        raise InvalidInput(
            "connect: give the one-time code an admin made on the server "
            "(`tributary slack connect-code TEAM`, then `/tributary connect CODE`)"
        )
    if not who.slack_team_id or not who.slack_user_id:
        raise InvalidInput("connect: Slack did not say which workspace and user this is")
    services.rate_limits.hit(
        f"slack-connect:{who.slack_team_id}"[:128],
        limit=MAX_CONNECT_ATTEMPTS_PER_MINUTE,
        window_s=60,
        what="connect attempts",
    )
    link = services.identities.connect_with_code(who.slack_team_id, code, who.actor)
    text = f":white_check_mark: This workspace is now connected to team *{link.team.name}*."
    now = services.identities.identify(
        who.slack_team_id, who.slack_user_id, lambda: confirmed_email(client, who.slack_user_id)
    )
    if now.member is not None:
        text += f" You are {now.member.email}."
    else:
        text += " Your confirmed Slack email is not a member's: ask an admin to link you."
    respond(text=text)


def _link(services: Services, who: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    if who.team is None:
        raise NotFound(NOT_CONNECTED)
    parts = unescape(argument).split()
    if len(parts) == 2 and mentioned_user(parts[0]):
        require_link_member(who.actor)
        slack_user, email = mentioned_user(parts[0]), parts[1]
        member = services.identities.link(who.team.id, email, slack_user)
        respond(text=f":white_check_mark: <@{slack_user}> is now {member.email} in team *{who.team.name}*.")
        return
    if len(parts) == 1 and "@" in parts[0]:
        if who.member is not None and who.member.email == parts[0].lower():
            respond(text=f"You are already linked as {who.member.email}.")
            return
        # Anyone could type anyone's email: a link that lets its holder spend needs an admin to vouch.
        raise InvalidInput(
            f"link: your confirmed Slack email does not match {parts[0]!r}; ask an admin of team "
            f"{who.team.name!r} to run `/tributary link @you {parts[0]}`"
        )
    raise InvalidInput("link: use `/tributary link @user EMAIL` (admins) or `/tributary link EMAIL`")


_HANDLERS = {
    "lookup": (_lookup, require_look_up),
    "credits": (_credits, require_see_balance),
    "usage": (_usage, require_see_usage),
    "connect": (_connect, None),  # core checks: the code, and who may move a connected workspace
    "link": (_link, None),  # checked inside: linking oneself by email, or another user (admins)
    "contacts": (contacts.handle, require_see_balance),
    "accounts": (accounts.handle, require_see_balance),
}
