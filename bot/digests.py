"""Admin usage digests as Slack DMs: a Block Kit summary, then the spend chart as an image.

`digest_deliverer(services, settings)` is the `deliver` function core.usage's
`DigestDeliveries.send_due_digests(now, deliver)` calls once per due digest; raising makes that
run record a failure and a later run try again. The chart goes up with files_upload_v2 (which uses
files.getUploadURLExternal + files.completeUploadExternal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bot.messages import MAX_MESSAGE_BLOCKS, fit
from bot.tokens import bot_clients_for_team
from core.errors import TributaryError
from core.services import Services
from core.settings import Settings

if TYPE_CHECKING:  # core.usage is another work item's; only its types are needed here
    from core.usage.delivery import DigestDelivery
    from core.usage.digest import UsageDigest

CHART_FILENAME = "tributary-spend.png"


class DigestNotDeliverable(TributaryError):
    pass


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def digest_blocks(digest: UsageDigest) -> list[Block]:
    d = digest
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Usage digest: {d.team_name}"[:150])),
        ContextBlock(elements=[MarkdownTextObject(text=f"{d.period.kind.value}, {d.period.label} (UTC)")]),
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
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text=f":hourglass: At this pace credits run out on {d.forecast.runs_out_on}")
                ]
            )
        )
    blocks.append(SectionBlock(text=MarkdownTextObject(text="*By member*" + ("" if d.by_member else ": nobody spent"))))
    for member in d.by_member:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{member.label}: {_credits(member.credits)}")]))
    return fit(blocks, MAX_MESSAGE_BLOCKS, what="members")


def digest_deliverer(services: Services, settings: Settings) -> Callable[[DigestDelivery], None]:
    def deliver(delivery: DigestDelivery) -> None:
        clients = bot_clients_for_team(services, settings, delivery.team_id)
        if not clients:
            raise DigestNotDeliverable(f"team {delivery.team_name!r} has no connected Slack workspace")
        client = clients[0]
        slack_user = delivery.member_slack_user_id
        if not slack_user:
            slack_user = client.users_lookupByEmail(email=delivery.member_email)["user"]["id"]
            services.slack_links.link(delivery.team_id, delivery.member_email, slack_user)
        channel = client.conversations_open(users=slack_user)["channel"]["id"]
        client.chat_postMessage(
            channel=channel,
            blocks=digest_blocks(delivery.digest),
            text=f"Usage digest for {delivery.team_name}: {_credits(delivery.digest.spent_credits)} spent",
        )
        client.files_upload_v2(
            channel=channel,
            content=delivery.chart_png(),
            filename=CHART_FILENAME,
            title=f"Spend, {delivery.digest.period.label}",
            alt_txt="Credits spent per day by category",
        )

    return deliver
