"""`/tributary contacts [status:verified] [owner:@me] …`: a page of the team's contacts with a
"Next page" button and an "Export to CSV" button whose file arrives as a direct message.

The export button carries the exact price shown on it as its spend cap: if more new contacts match
by the time it is pressed, the export is refused instead of costing more than the button said."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, ButtonElement

from bot import messages
from bot.identity import SlackActor
from bot.listener import run_as_actor
from core.accounts import MemberInfo
from core.actors import require_see_balance, require_spend
from core.errors import InvalidInput, NotAMember, NotFound
from core.services import Services
from core.team_contacts.models import ContactPage, ContactView, PageRequest
from storage.models.enums import Feature

CONTACTS_NEXT = "contacts_next"
CONTACTS_EXPORT = "contacts_export"
SLACK_PAGE_SIZE = 10
MAX_BUTTON_VALUE_CHARS = 2000  # Slack's limit on a button's value
_MENTION = re.compile(r"^owner:<@([A-Z0-9]+)(?:\|[^>]*)?>$", re.IGNORECASE)


def _member(who: SlackActor) -> MemberInfo:
    """The member behind a request that passed core's rule (bot.listener checked it)."""
    if who.member is None:  # the rule refuses outsiders first; kept as a guard for direct callers
        raise NotAMember("contacts: ask an admin to link you")
    return who.member


def _words(services: Services, member: MemberInfo, argument: str) -> tuple[list[str], Callable[[str], int]]:
    """Words of the command; `owner:<@U123|jane>` (Slack's escaped mention) becomes that member."""
    words, mentioned = [], {}
    for word in argument.split():
        match = _MENTION.match(word)
        if match:
            found = services.identities.member_by_slack_user(member.team_id, match.group(1))
            if found is None:
                raise NotFound(f"contacts: <@{match.group(1)}> is not linked to a member of this team")
            mentioned[f"slack:{match.group(1)}"] = found.id
            word = f"owner:slack:{match.group(1)}"
        words.append(word.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))

    def member_id(ref: str) -> int:
        if ref in mentioned:
            return mentioned[ref]
        return services.accounts.member(ref.removeprefix("<mailto:").split("|")[0].rstrip(">"), member.team_id).id

    return words, member_id


def _line(c: ContactView) -> str:
    esc = messages.escape_mrkdwn
    phones = ", ".join(f"{p.e164} ({p.line_type or p.kind})" for p in c.phones if p.status != "invalid")
    company = f" · {esc(c.company)}" if c.company else ""
    if c.job_change_on:
        company += f" :briefcase: _job change {c.job_change_on:%Y-%m-%d}_"
    return (
        f"*{esc(c.full_name)}*{company}\n{esc(c.email) or '—'} {messages.email_status_label(c.email_status)}"
        f"  {phones or 'no phone'}\nowner {esc(c.owner_email) or '—'} · {c.source} · saved {c.saved_at:%Y-%m-%d}"
    )


def page_blocks(argument: str, page: ContactPage, total: int, export_credits: int) -> list[Block]:
    blocks: list[Block] = [messages._section(f"*{total} contacts* match `{messages.escape_mrkdwn(argument) or 'all'}`")]
    blocks += [messages._section(_line(c)) for c in page.contacts]
    if not page.contacts:
        blocks.append(messages._context("No contacts on this page."))
    buttons = []
    if page.next_cursor:
        value = json.dumps({"a": argument, "c": page.next_cursor})
        if len(value) <= MAX_BUTTON_VALUE_CHARS:
            buttons.append(ButtonElement(text="Next page", action_id=CONTACTS_NEXT, value=value))
    export_value = json.dumps({"a": argument, "cap": export_credits})
    if total and len(export_value) <= MAX_BUTTON_VALUE_CHARS:
        label = "Export to CSV" + (f" ({export_credits} credits)" if export_credits else " (free)")
        buttons.append(ButtonElement(text=label, action_id=CONTACTS_EXPORT, value=export_value))
    if buttons:
        blocks.append(messages.actions(buttons))
    return messages.message_blocks(blocks)


def show_page(services: Services, member: MemberInfo, argument: str, cursor: str | None, respond: Respond) -> None:
    words, member_id = _words(services, member, argument)
    f = services.team_contacts.filter_from_words(member, words, member_id)
    page = services.team_contacts.find(member, f, PageRequest(SLACK_PAGE_SIZE, cursor))
    preview = services.contact_exports.preview(member, f)
    respond(
        blocks=page_blocks(argument, page, preview.contacts, preview.credits),
        text=f"{preview.contacts} contacts",
        replace_original=cursor is not None,
        response_type="ephemeral",
    )


def handle(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    """The `contacts` sub-command (called by bot.commands with the text after `contacts`)."""
    show_page(services, _member(actor), argument, None, respond)


def export_to_dm(services: Services, member: MemberInfo, slack_user: str, value: dict, client: WebClient) -> str:
    words, member_id = _words(services, member, str(value.get("a", "")))
    f = services.team_contacts.filter_from_words(member, words, member_id)
    cap = value.get("cap")
    if not isinstance(cap, int):
        raise InvalidInput("export: this button is not one we made")
    with tempfile.NamedTemporaryFile(suffix=".csv") as fh:
        result = services.contact_exports.export(member, f, fh, feature=Feature.SLACK, max_credits=cap)
        fh.flush()
        channel = client.conversations_open(users=slack_user)["channel"]["id"]
        client.files_upload_v2(
            channel=channel, file=fh.name, filename="contacts.csv", title="Tributary contacts",
            initial_comment=f"{result.rows_written} contacts ({result.net_new} new, {result.credits_charged} credits)",
        )  # fmt: skip
    done = f"Exported {result.rows_written} contacts ({result.credits_charged} credits)"
    return f":white_check_mark: {done}; the CSV is in your direct messages."


def register(app: App, services: Services) -> None:
    def ack_action(ack: Ack) -> None:
        ack()

    def guarded(work: Callable[[dict, SlackActor, Respond, WebClient], None], rule):
        def run(body: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
            def reply(text: str) -> None:
                respond(text=text, replace_original=False, response_type="ephemeral")

            run_as_actor(services, context, client, reply, lambda who: work(body, who, respond, client),
                         rule=rule, what="contacts")  # fmt: skip

        run.__name__ = work.__name__
        return run

    def _value(body: dict) -> dict:
        try:
            value = json.loads(body["actions"][0]["value"])
        except (KeyError, IndexError, ValueError):
            raise InvalidInput("contacts: this button is not one we made") from None
        if not isinstance(value, dict):
            raise InvalidInput("contacts: this button is not one we made")
        return value

    def next_page(body: dict, who: SlackActor, respond: Respond, client: WebClient) -> None:
        member = _member(who)
        value = _value(body)
        show_page(services, member, str(value.get("a", "")), str(value.get("c") or "") or None, respond)

    def export(body: dict, who: SlackActor, respond: Respond, client: WebClient) -> None:
        text = export_to_dm(services, _member(who), who.slack_user_id or "", _value(body), client)
        respond(text=text, replace_original=False, response_type="ephemeral")

    app.action(CONTACTS_NEXT)(ack=ack_action, lazy=[guarded(next_page, require_see_balance)])
    app.action(CONTACTS_EXPORT)(ack=ack_action, lazy=[guarded(export, require_spend)])
