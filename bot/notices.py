"""Notices from the outbox (refund decisions, job changes), delivered to each member as a Slack DM.

The outbox (core/outbox.py) is the durable queue: a notice stays pending
until `mark_delivered`, which is called only after chat.postMessage came back ok, so a crash or a
restart between the two sends it again rather than losing it. Within one pass, slack_sdk's retry
handlers honour 429 Retry-After and back off on 5xx; what still fails goes back to the outbox with
`mark_failed(id, error, retry_after_s)` (Retry-After when Slack gave one, else exponential backoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.messages import escape_mrkdwn
from bot.tokens import bot_clients_for_team
from core.bounces.refund_notices import RefundNoticeDetails, refund_notice_details
from core.errors import NotFound
from core.outbox import JobChangeAlert, Notice, Outbox
from core.services import Services
from core.settings import Settings

NOT_CONNECTED_RETRY_S = 3600
NO_MEMBER_RETRY_S = 6 * 3600
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    errors: tuple[str, ...]


class Undeliverable(Exception):
    def __init__(self, error: str, retry_after_s: float | None) -> None:
        super().__init__(error)
        self.retry_after_s = retry_after_s


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "—"


def refund_notice_blocks(details: RefundNoticeDetails) -> list[Block]:
    credits = f"{details.credits} credit" + ("" if details.credits == 1 else "s")
    status = f" ({details.bounce_status})" if details.bounce_status else ""
    title = (
        f":money_with_wings: *Refund: {credits}* for `{details.email_address}`, which bounced{status}."
        if details.granted
        else f":envelope: `{details.email_address}` bounced{status}: no refund."
    )
    facts = (
        f"Accessed {_day(details.accessed_at)} · sent from Tributary {_day(details.sent_at)} · "
        f"bounced {_day(details.bounced_at)}"
    )
    footer = (
        f"The credit comes back in the billing cycle starting {_day(details.credit_cycle_starts_at)}."
        if details.granted
        else details.summary
    )
    return [
        SectionBlock(text=MarkdownTextObject(text=f"{title}\n{facts}")),
        ContextBlock(elements=[MarkdownTextObject(text=footer)]),
    ]


def job_change_blocks(alert: JobChangeAlert) -> list[Block]:
    # Names and companies are contact data: escaped so they never turn into links or mentions.
    moved = (
        f"from {escape_mrkdwn(alert.old_company)} to *{escape_mrkdwn(alert.new_company)}*"
        if alert.old_company
        else f"to *{escape_mrkdwn(alert.new_company)}*"
    )
    lines = [f":briefcase: *Job change*: {escape_mrkdwn(alert.full_name)} moved {moved} ({alert.changed_on})."]
    if alert.old_email:
        lines.append(f"`{escape_mrkdwn(alert.old_email)}` is marked update required.")
    return [
        SectionBlock(text=MarkdownTextObject(text="\n".join(lines))),
        ContextBlock(elements=[MarkdownTextObject(text=f"Contact {alert.team_contact_id} · you own this contact")]),
    ]


def _message(services: Services, notice: Notice) -> tuple[list[Block], str]:
    """The blocks and fallback text of a notice, by its kind."""
    if isinstance(notice.payload, JobChangeAlert):  # NoticeKind.JOB_CHANGE: the outbox reads each kind's type
        return job_change_blocks(notice.payload), notice.payload.text
    details = refund_notice_details(services.engine, services.accounts, notice)
    return refund_notice_blocks(details), details.summary


def _slack_user(services: Services, client: WebClient, notice: Notice) -> str:
    if notice.member_id is None:
        raise Undeliverable("notice has no member", NO_MEMBER_RETRY_S)
    slack_user = services.identities.slack_user_of(notice.member_id)
    if slack_user:
        return slack_user
    member = services.accounts.member(notice.member_id)
    try:
        found = client.users_lookupByEmail(email=member.email)
    except SlackApiError as exc:
        if exc.response.get("error") == "users_not_found":
            raise Undeliverable(f"no Slack user has the email {member.email}", NOT_CONNECTED_RETRY_S) from None
        raise
    slack_user = found["user"]["id"]
    services.identities.link(member.team_id, member.email, slack_user)
    return slack_user


def deliver_one(services: Services, settings: Settings, notice: Notice) -> None:
    clients = bot_clients_for_team(services, settings, notice.team_id)
    if not clients:
        raise Undeliverable("the team has no connected Slack workspace", NOT_CONNECTED_RETRY_S)
    client = clients[0]
    try:
        slack_user = _slack_user(services, client, notice)
        channel = client.conversations_open(users=slack_user)["channel"]["id"]
        blocks, text = _message(services, notice)
        client.chat_postMessage(channel=channel, blocks=blocks, text=text)
    except SlackApiError as exc:
        error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
        retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
        if exc.response.status_code == 429 and retry_after:
            raise Undeliverable(f"rate limited: {error}", float(retry_after)) from None
        raise Undeliverable(f"Slack said {error}", None) from None
    except (SlackClientError, OSError) as exc:
        raise Undeliverable(f"{type(exc).__name__}: {exc}", None) from None
    except NotFound as exc:
        raise Undeliverable(str(exc), NO_MEMBER_RETRY_S) from None


def deliver_notices(
    outbox: Outbox, services: Services, settings: Settings, *, limit: int, now: datetime | None = None
) -> DeliveryReport:
    """One pass over the due notices. `now` lets a test (or a catch-up run) speak of another instant."""
    delivered = failed = 0
    errors: list[str] = []
    for notice in outbox.pending_notices(limit, now=now):
        try:
            deliver_one(services, settings, notice)
        except Undeliverable as exc:
            outbox.mark_failed(notice.id, str(exc), exc.retry_after_s, now=now)
            failed += 1
            errors.append(f"notice {notice.id}: {exc}")
            log.warning("notice %s not delivered: %s (retry in %ss)", notice.id, exc, exc.retry_after_s)
            continue
        outbox.mark_delivered(notice.id, now=now)
        delivered += 1
    return DeliveryReport(delivered, failed, tuple(errors))
