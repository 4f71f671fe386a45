"""`/tributary …`: acknowledged at once, the work done in a lazy listener that answers via respond.

Sub-commands: lookup, credits, usage, help, connect, link. Slack escapes users, links and emails in
the command text (`should_escape` in the manifest): `<@U123|jane>`, `<https://…>`, `<mailto:a@b|a@b>`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import contacts, messages
from bot.identity import SlackActor, actor_of, ensure_member, profile_email
from core.errors import InvalidInput, NotFound, TributaryError
from core.people import canonical_linkedin_url
from core.person_lookup import LookupQuery, find_people
from core.services import Services
from storage.timeutil import utcnow

COMMAND = "/tributary"
SUBCOMMANDS = ("lookup", "credits", "usage", "help", "connect", "link", "contacts")
MAX_TEXT_CHARS = 1000
_ESCAPED = re.compile(r"<([^>|]+)(?:\|([^>]*))?>")
_AT = re.compile(r"\s+at\s+", re.IGNORECASE)
_USER = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")
log = logging.getLogger(__name__)


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
        actor = actor_of(services, context)
        try:
            handler = _HANDLERS[parsed.name]
            handler(services, actor, parsed.argument, respond, client)
        except TributaryError as exc:
            respond(text=f":warning: {exc}", replace_original=False)
        except Exception:
            log.exception("/tributary %s failed", parsed.name)
            respond(text=":boom: Something went wrong on our side; please try again.", replace_original=False)

    app.command(COMMAND)(ack=ack_command, lazy=[run_command])


def _require_team(actor: SlackActor) -> None:
    if actor.team is None:
        raise NotFound(
            "this Slack workspace is not connected to a Tributary team: an admin runs `/tributary connect TEAM`"
        )


def _lookup(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    _require_team(actor)
    query = lookup_query(argument)
    people = find_people(services.engine, query, team_id=actor.team.id)
    previews = [services.person_previews.preview(actor.team.id, p) for p in people]
    if len(previews) == 1:
        prices = messages.Prices.of(actor.team)
        respond(blocks=messages.person_card(previews[0], prices), text=previews[0].person.full_name)
    else:
        label = query.name + (f" at {query.company}" if query.company else "")
        respond(blocks=messages.candidate_list(previews, label), text=f"{len(previews)} people match {label}")


def _credits(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    _require_team(actor)
    actor = ensure_member(services, actor, client)
    overview = services.credit_overviews.overview(actor.team.id, actor.member.id if actor.member else None)
    respond(blocks=messages.credits_message(overview), text=f"{overview.balance.available_credits} credits available")


def _usage(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    _require_team(actor)
    actor = ensure_member(services, actor, client)
    if not actor.is_admin:
        raise InvalidInput("usage: only admins of the team can see its usage (try `/tributary credits`)")
    cycle = services.accounts.current_cycle(actor.team.id)
    spends = services.credit_overviews.spend_by_member(actor.team.id, since=cycle.starts_at, until=utcnow())
    who = None
    if argument:
        slack_user = mentioned_user(argument)
        if slack_user is None:
            raise InvalidInput(f"usage: {argument!r} is not a Slack user (mention them: `/tributary usage @jane`)")
        member = services.slack_links.member_by_slack_user(actor.team.id, slack_user)
        if member is None:
            raise NotFound(f"usage: <@{slack_user}> is not linked to a member of team {actor.team.name!r}")
        spends = [s for s in spends if s.member_id == member.id]
        who = member.email
    respond(blocks=messages.usage_message(actor.team, cycle, spends, who=who), text="Usage this cycle")


def _connect(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    team_name = argument.strip()
    if not team_name:
        raise InvalidInput("connect: name the Tributary team (`/tributary connect TEAM`)")
    if not actor.slack_team_id or not actor.slack_user_id:
        raise InvalidInput("connect: Slack did not say which workspace and user this is")
    team = services.accounts.team(team_name)
    email = profile_email(client, actor.slack_user_id)
    member = services.slack_links.member_by_email(team.id, email) if email else None
    if member is None or not member.is_admin:
        raise InvalidInput(
            f"connect: your Slack email ({email or 'hidden'}) is not an admin of team {team.name!r}; "
            "an admin can also run `tributary slack connect TEAM SLACK_TEAM_ID` on the server"
        )
    services.slack_links.connect(actor.slack_team_id, team.id, by_member=member)
    services.slack_links.link(team.id, member.email, actor.slack_user_id)
    respond(text=f":white_check_mark: This workspace is now connected to team *{team.name}*.")


def _link(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    _require_team(actor)
    actor = ensure_member(services, actor, client)
    parts = unescape(argument).split()
    if len(parts) == 2 and mentioned_user(parts[0]):
        if not actor.is_admin:
            raise InvalidInput("link: only admins can link another Slack user")
        slack_user, email = mentioned_user(parts[0]), parts[1]
        member = services.slack_links.link(actor.team.id, email, slack_user)
        respond(text=f":white_check_mark: <@{slack_user}> is now {member.email} in team *{actor.team.name}*.")
        return
    if len(parts) == 1 and "@" in parts[0]:
        if actor.member is not None and actor.member.email == parts[0].lower():
            respond(text=f"You are already linked as {actor.member.email}.")
            return
        # Anyone could type anyone's email: a link that lets its holder spend needs an admin to vouch.
        raise InvalidInput(
            f"link: your Slack profile email does not match {parts[0]!r}; ask an admin of team "
            f"{actor.team.name!r} to run `/tributary link @you {parts[0]}`"
        )
    raise InvalidInput("link: use `/tributary link @user EMAIL` (admins) or `/tributary link EMAIL`")


_HANDLERS = {
    "lookup": _lookup,
    "credits": _credits,
    "usage": _usage,
    "connect": _connect,
    "link": _link,
    "contacts": contacts.handle,
}
