"""Admin usage digests as Slack DMs: a Block Kit summary, then the spend chart as an image.

`digest_deliverer(services, settings)` is the `deliver` function core.usage's
`DigestDeliveries.send_due_digests(now, deliver)` calls once per due digest; raising makes that
run record a failure and a later run try again. The chart goes up with files_upload_v2 (which uses
files.getUploadURLExternal + files.completeUploadExternal).

Delivered at most once: once chat.postMessage has gone through, the digest counts as delivered and
nothing after it raises, since a raise would make the next run post the whole message again. The
chart upload is retried (see `_upload_chart`); if it still fails, the posted message is edited to
say so and the delivery returns normally. A failed post still raises: nothing was delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bot.messages import MAX_MESSAGE_BLOCKS, escape_mrkdwn, fit
from bot.tokens import bot_clients_for_team
from core.errors import TributaryError
from core.services import Services
from core.settings import Settings
from core.sources.http_provider import parse_retry_after

if TYPE_CHECKING:  # core.usage is another work item's; only its types are needed here
    from core.usage.delivery import DigestDelivery
    from core.usage.digest import UsageDigest

CHART_FILENAME = "tributary-spend.png"
CHART_NOTE_PREFIX = "The spend chart could not be attached: "
# Whole files_upload_v2 sequences. Each Web API call in one already retries 429s and 500/503s itself
# (bot/tokens.py's retry handlers); these cover what those do not: `ok: false` transient errors,
# connection errors, the upload URL's own POST, and 429s that outlast the in-call retries.
CHART_UPLOAD_ATTEMPTS = 3
CHART_BACKOFF_INITIAL_S = 1.0
CHART_BACKOFF_MAX_S = 8.0
MAX_CHART_RETRY_AFTER_S = 30.0  # a longer Retry-After is not waited out: the digest task has others to send
MAX_REASON_CHARS = 200
# `ok: false` errors Slack documents as temporary; anything else (missing_scope, not_in_channel...) will not heal.
TRANSIENT_SLACK_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)

log = logging.getLogger(__name__)


class DigestNotDeliverable(TributaryError):
    pass


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def _note(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def digest_blocks(digest: UsageDigest, *, note: str | None = None) -> list[Block]:
    """The digest's blocks; `note` (mrkdwn, already escaped) is a last context line that survives the block cap."""
    d = digest
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Usage digest: {d.team_name}"[:150])),
        _note(f"{d.period.kind.value}, {d.period.label} (UTC)"),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Spent*\n{_credits(d.spent_credits)}"),
                MarkdownTextObject(
                    text=f"*Balance*\n{_credits(d.balance.available_credits)} available"
                    + (f", {d.balance.held_credits} held" if d.balance.held_credits else "")
                ),
                MarkdownTextObject(
                    text="*By category*\n"
                    + (", ".join(f"{c.label} {c.credits}" for c in d.by_category if c.credits) or "nothing")
                ),
                MarkdownTextObject(
                    text="*Refunds*\n"
                    f"{_credits(d.refunds.granted_credits)} granted, {_credits(d.refunds.pending_credits)} pending"
                ),
            ]
        ),
    ]
    if d.forecast.runs_out_on is not None:
        blocks.append(_note(f":hourglass: At this pace credits run out on {d.forecast.runs_out_on}"))
    if d.job_changes.count:
        # Names are contact data: escaped so they never turn into links or mentions.
        names = "; ".join(escape_mrkdwn(n) for n in d.job_changes.names)
        more = d.job_changes.count - len(d.job_changes.names)
        blocks.append(
            _note(f":briefcase: {d.job_changes.count} job change(s): {names}" + (f" and {more} more" if more else ""))
        )
    blocks.append(SectionBlock(text=MarkdownTextObject(text="*By member*" + ("" if d.by_member else ": nobody spent"))))
    for member in d.by_member:
        # Member emails are user data: escaped so they never turn into links or mentions.
        blocks.append(_note(f"{escape_mrkdwn(member.label)}: {_credits(member.credits)}"))
    if note is None:
        return fit(blocks, MAX_MESSAGE_BLOCKS, what="members")
    return [*fit(blocks, MAX_MESSAGE_BLOCKS - 1, what="members"), _note(note)]


def _fallback_text(delivery: DigestDelivery) -> str:
    return f"Usage digest for {escape_mrkdwn(delivery.team_name)}: {_credits(delivery.digest.spent_credits)} spent"


# ---- the chart upload --------------------------------------------------------------------


def _retry_after_s(exc: BaseException) -> float | None:
    headers: Any = None
    if isinstance(exc, SlackApiError) and exc.response is not None:
        headers = exc.response.headers
    elif isinstance(exc, HTTPError):
        headers = exc.headers
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value[0] if isinstance(value, list) else value)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            retry_after_s = _retry_after_s(exc)
            return retry_after_s is None or retry_after_s <= MAX_CHART_RETRY_AFTER_S
        if status is not None and status >= 500:
            return True
        return exc.response is not None and exc.response.get("error") in TRANSIENT_SLACK_ERRORS
    if isinstance(exc, HTTPError):  # the upload URL's POST (urllib), outside the Web API's retry handlers
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, OSError)  # connection refused or reset, timeouts


def _wait_s(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after_s = _retry_after_s(exc) if exc is not None else None
    if retry_after_s is not None:
        return retry_after_s
    return wait_random_exponential(multiplier=CHART_BACKOFF_INITIAL_S, max=CHART_BACKOFF_MAX_S)(state)


def _upload_chart(client: WebClient, channel: str, delivery: DigestDelivery) -> None:
    """files_upload_v2, retried as a whole: a failed attempt's file was never shared, so a new one is safe.
    (A completeUploadExternal that succeeded but whose answer was lost would show the chart twice; that
    is the lesser harm next to no chart, and it can never repost the message.)"""
    png = delivery.chart_png()
    retrying = Retrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(CHART_UPLOAD_ATTEMPTS),
        wait=_wait_s,
        reraise=True,
    )
    retrying(
        client.files_upload_v2,
        channel=channel,
        content=png,
        filename=CHART_FILENAME,
        title=f"Spend, {delivery.digest.period.label}",
        alt_txt="Credits spent per day by category",
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        reason = exc.response.get("error") or f"HTTP {exc.response.status_code}"
    elif isinstance(exc, HTTPError):
        reason = f"HTTP {exc.code} from the upload URL"
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return reason[:MAX_REASON_CHARS]


def _say_chart_missing(client: WebClient, posted: Any, delivery: DigestDelivery, reason: str) -> None:
    try:
        client.chat_update(
            channel=posted["channel"],
            ts=posted["ts"],
            blocks=digest_blocks(delivery.digest, note=f":warning: {CHART_NOTE_PREFIX}{escape_mrkdwn(reason)}"),
            text=_fallback_text(delivery),
        )
    except Exception:  # the digest is delivered all the same; raising would post it again
        log.exception("digest %s: could not add the missing-chart note to the message", delivery.delivery_id)


# ---- delivery ----------------------------------------------------------------------------


def digest_deliverer(services: Services, settings: Settings) -> Callable[[DigestDelivery], None]:
    def deliver(delivery: DigestDelivery) -> None:
        clients = bot_clients_for_team(services, settings, delivery.team_id)
        if not clients:
            raise DigestNotDeliverable(f"team {delivery.team_name!r} has no connected Slack workspace")
        client = clients[0]
        slack_user = delivery.member_slack_user_id
        if not slack_user:
            slack_user = client.users_lookupByEmail(email=delivery.member_email)["user"]["id"]
            services.identities.link(delivery.team_id, delivery.member_email, slack_user)
        channel = client.conversations_open(users=slack_user)["channel"]["id"]
        posted = client.chat_postMessage(
            channel=channel, blocks=digest_blocks(delivery.digest), text=_fallback_text(delivery)
        )
        # Delivered from here on: nothing below may raise (see the module docstring).
        try:
            _upload_chart(client, channel, delivery)
        except Exception as exc:  # rendering or uploading: either way the chart is missing, the message is not
            reason = _reason(exc)
            log.warning(
                "digest %s for %s: chart not attached after %d attempts: %s",
                delivery.delivery_id,
                delivery.member_email,
                CHART_UPLOAD_ATTEMPTS,
                reason,
                exc_info=exc,
            )
            _say_chart_missing(client, posted, delivery, reason)

    return deliver
