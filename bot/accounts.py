"""`/tributary accounts [owner:@me] [source:csv] [acme]`: a page of the team's accounts (the
companies of its contacts) with their owners, and a "Next page" button."""

from __future__ import annotations

import json

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, ButtonElement

from bot import messages
from bot.contacts import MAX_BUTTON_VALUE_CHARS, SLACK_PAGE_SIZE, _member, _words
from bot.identity import SlackActor
from bot.listener import run_as_actor
from core.accounts import MemberInfo
from core.actors import require_see_balance
from core.errors import InvalidInput
from core.services import Services
from core.team_contacts.models import AccountPage, AccountView, PageRequest

ACCOUNTS_NEXT = "accounts_next"


def _line(a: AccountView) -> str:
    esc = messages.escape_mrkdwn
    domain = f" · {esc(a.domain)}" if a.domain else ""
    return (
        f"*{esc(a.name)}*{domain}\n{a.contacts} contacts · owner {esc(a.owner_email) or '—'} · {a.source}"
        f" · saved {a.saved_at:%Y-%m-%d}"
    )


def page_blocks(argument: str, page: AccountPage, total: int) -> list[Block]:
    blocks: list[Block] = [messages._section(f"*{total} accounts* match `{messages.escape_mrkdwn(argument) or 'all'}`")]
    blocks += [messages._section(_line(a)) for a in page.accounts]
    if not page.accounts:
        blocks.append(messages._context("No accounts on this page."))
    value = json.dumps({"a": argument, "c": page.next_cursor})
    if page.next_cursor and len(value) <= MAX_BUTTON_VALUE_CHARS:
        blocks.append(messages.actions([ButtonElement(text="Next page", action_id=ACCOUNTS_NEXT, value=value)]))
    return messages.message_blocks(blocks)


def show_page(services: Services, member: MemberInfo, argument: str, cursor: str | None, respond: Respond) -> None:
    words, member_id = _words(services, member, argument)
    accounts = services.team_accounts
    f = accounts.filter_from_words(member, words, member_id)
    page = accounts.find(member, f, PageRequest(SLACK_PAGE_SIZE, cursor))
    total = accounts.count(member, f)
    respond(
        blocks=page_blocks(argument, page, total),
        text=f"{total} accounts",
        replace_original=cursor is not None,
        response_type="ephemeral",
    )


def handle(services: Services, actor: SlackActor, argument: str, respond: Respond, client: WebClient) -> None:
    """The `accounts` sub-command (called by bot.commands with the text after `accounts`)."""
    show_page(services, _member(actor), argument, None, respond)


def register(app: App, services: Services) -> None:
    def ack_action(ack: Ack) -> None:
        ack()

    def next_page(body: dict, respond: Respond, context: BoltContext, client: WebClient) -> None:
        def reply(text: str) -> None:
            respond(text=text, replace_original=False, response_type="ephemeral")

        def work(who: SlackActor) -> None:
            try:
                value = json.loads(body["actions"][0]["value"])
                argument, cursor = str(value["a"]), str(value["c"])
            except (KeyError, IndexError, TypeError, ValueError):
                raise InvalidInput("accounts: this button is not one we made") from None
            show_page(services, _member(who), argument, cursor, respond)

        run_as_actor(services, context, client, reply, work, rule=require_see_balance, what="accounts")

    app.action(ACCOUNTS_NEXT)(ack=ack_action, lazy=[next_page])
