"""Block Kit for every message and view the bot sends, built with slack_sdk's block models.

Slack's limits are enforced here, not hoped for: at most 50 blocks in a message, 100 in a view, 25
elements in an actions block. A list that would overflow is cut and ends with a line saying how
many entries were left out, so nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from core.accounts import CycleInfo, TeamInfo
from core.data_requests import AccessResult, PersonPreview
from core.usage.overview import CreditOverview, RecentAccess, RefundView
from core.usage.spend import CategorySpend, MemberSpend
from storage.models.enums import DataKind, DataRequestStatus, EmailStatus

MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_ACTIONS_ELEMENTS = 25
MAX_SECTION_TEXT_CHARS = 3000
MAX_HEADER_CHARS = 150

ACCESS_EMAIL = "access_email"
ACCESS_MOBILE = "access_mobile"
PICK_PERSON = "pick_person"  # action ids are PICK_PERSON:<person id>, unique within a message

EMAIL_STATUS_LABELS = {
    EmailStatus.VERIFIED: ":white_check_mark: verified",
    EmailStatus.LIKELY_TO_ENGAGE: ":star: verified, likely to engage",
    EmailStatus.ACCEPT_ALL: ":grey_question: accept-all (mailbox not confirmed)",
    EmailStatus.UNVERIFIED: ":grey_question: unverified",
    EmailStatus.UPDATE_REQUIRED: ":warning: update required",
    EmailStatus.INVALID: ":x: invalid",
    EmailStatus.UNAVAILABLE: ":heavy_minus_sign: unavailable",
    EmailStatus.UNKNOWN: ":grey_question: unknown",
}


class BlockLimitExceeded(ValueError):
    pass


@dataclass(frozen=True)
class Prices:
    email_credits: int
    mobile_credits: int

    @classmethod
    def of(cls, team: TeamInfo) -> Prices:
        return cls(team.plan.price_email_credits, team.plan.price_mobile_credits)


# ---- limits ------------------------------------------------------------------------------


def fit(blocks: Sequence[Block], limit: int, *, what: str = "entries") -> list[Block]:
    """At most `limit` blocks: cut the tail and say how many blocks were left out."""
    blocks = list(blocks)
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, _context(f"…and {len(blocks) - len(kept)} more {what} not shown (Slack shows {limit} at most)")]


def actions(elements: Sequence[ButtonElement], *, block_id: str | None = None) -> ActionsBlock:
    if len(elements) > MAX_ACTIONS_ELEMENTS:
        raise BlockLimitExceeded(f"actions block: {len(elements)} elements, Slack allows {MAX_ACTIONS_ELEMENTS}")
    return ActionsBlock(elements=list(elements), block_id=block_id)


def message_blocks(blocks: Sequence[Block]) -> list[Block]:
    return fit(blocks, MAX_MESSAGE_BLOCKS)


# ---- small pieces ------------------------------------------------------------------------


def _text(value: str) -> str:
    return value if len(value) <= MAX_SECTION_TEXT_CHARS else value[: MAX_SECTION_TEXT_CHARS - 1] + "…"


def _section(markdown: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_text(markdown)))


def _context(markdown: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_text(markdown))])


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=text[:MAX_HEADER_CHARS]))


def escape_mrkdwn(value: str | None) -> str:
    # Slack's mrkdwn control characters; user data must never turn into links or mentions.
    return (value or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "—"


def _category(spend: CategorySpend) -> str:
    return spend.category.value if spend.category else "other"


def _categories(spends: Sequence[CategorySpend]) -> str:
    return ", ".join(f"{_category(s)} {s.credits}" for s in spends) or "nothing yet"


def email_status_label(status: EmailStatus | None) -> str:
    return EMAIL_STATUS_LABELS.get(status, ":heavy_minus_sign: none on file") if status else ":heavy_minus_sign: none"


# ---- lookups and access ------------------------------------------------------------------


def person_card(
    preview: PersonPreview, prices: Prices, *, results: Sequence[AccessResult] = (), note: str | None = None
) -> list[Block]:
    """A person: firmographics, email status, mobile availability; what the team has accessed; buttons."""
    person = preview.person
    lines = [f"*{escape_mrkdwn(person.full_name)}*"]
    role = " at ".join(escape_mrkdwn(x) for x in (person.title, person.company) if x)
    if role:
        lines.append(role)
    if person.location:
        lines.append(f":round_pushpin: {escape_mrkdwn(person.location)}")
    if person.linkedin_url:
        lines.append(f"<{person.linkedin_url}|LinkedIn>")
    blocks: list[Block] = [_section("\n".join(lines))]

    email_line = f"*Email:* {email_status_label(preview.email_status)}"
    if preview.email_status_hidden:
        email_line = "*Email:* on file, not yet accessed (its status shows once your team accesses it)"
    if preview.accessed_email is not None:
        email = preview.accessed_email
        email_line = f"*Email:* `{escape_mrkdwn(email.address)}` — {email_status_label(email.status)}"
    elif preview.email_accessed:
        email_line = "*Email:* none found"
    if preview.accessed_office_phone:
        email_line += f"\n*Office phone:* `{preview.accessed_office_phone}`"
    mobile_line = "*Mobile:* " + ("available" if preview.mobile_available else "none on file")
    mobile_result = next((r for r in results if r.kind == DataKind.MOBILE and r.mobile_phones), None)
    if mobile_result is not None:
        mobile_line = "*Mobile:* " + mobile_statuses(mobile_result)
    elif preview.accessed_mobiles:
        mobile_line = "*Mobile:* " + ", ".join(f"`{m}`" for m in preview.accessed_mobiles)
    blocks.append(SectionBlock(fields=[MarkdownTextObject(text=email_line), MarkdownTextObject(text=mobile_line)]))

    for result in results:
        blocks.append(_context(access_outcome(result)))
    if note:
        blocks.append(_context(note))

    buttons = []
    if not preview.email_accessed and (preview.email_status is not None or preview.email_status_hidden):
        buttons.append(
            ButtonElement(
                text=f"Access email ({_credits(prices.email_credits)})",
                action_id=ACCESS_EMAIL,
                value=str(person.id),
                style="primary",
            )
        )
    if not preview.mobile_accessed and preview.mobile_available:
        buttons.append(
            ButtonElement(
                text=f"Access mobile ({_credits(prices.mobile_credits)})",
                action_id=ACCESS_MOBILE,
                value=str(person.id),
            )
        )
    if buttons:
        blocks.append(actions(buttons, block_id=f"access:{person.id}"))
    return message_blocks(blocks)


def access_outcome(result: AccessResult) -> str:
    what = "email" if result.kind == DataKind.EMAIL else "mobile"
    if result.already_accessed:
        return f"Your team already has this {what}: no credits charged."
    if result.status == DataRequestStatus.CHARGED:
        return f":white_check_mark: {what.capitalize()} accessed for {_credits(result.charged_credits)}."
    if result.status == DataRequestStatus.FREE:
        status = email_status_label(result.email.status) if result.email else "not chargeable"
        return f"{what.capitalize()} found ({status}): free, no credits charged."
    return f"No {what} found: no credits charged."


def mobile_statuses(result: AccessResult) -> str:
    return ", ".join(
        f"`{p.e164}` ({p.status.value}{', ' + p.line_type if p.line_type else ''})" for p in result.mobile_phones
    )


def candidate_list(previews: Sequence[PersonPreview], query: str) -> list[Block]:
    blocks: list[Block] = [_section(f"Several people match *{escape_mrkdwn(query)}*. Pick one:")]
    for preview in previews:
        person = preview.person
        detail = " · ".join(escape_mrkdwn(x) for x in (person.title, person.company, person.location) if x)
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=_text(f"*{escape_mrkdwn(person.full_name)}*\n{detail}")),
                accessory=ButtonElement(text="Show", action_id=f"{PICK_PERSON}:{person.id}", value=str(person.id)),
            )
        )
    return message_blocks(blocks)


def notice(text: str) -> list[Block]:
    return [_section(text)]


def insufficient_credits(needed_credits: int, available_credits: int, what: str) -> list[Block]:
    return [
        _section(
            f":warning: Not enough credits to access this {what}: it costs {_credits(needed_credits)} and your "
            f"team has {_credits(available_credits)} available. Nothing was charged. An admin can add credits "
            "or change the plan."
        )
    ]


# ---- credits, usage, help ----------------------------------------------------------------


def credits_message(overview: CreditOverview) -> list[Block]:
    balance = overview.balance
    held = f" ({_credits(balance.held_credits)} held by lookups in progress)" if balance.held_credits else ""
    blocks: list[Block] = [
        _header(f"Credits: {overview.team.name}"),
        _section(
            f"*Balance:* {_credits(balance.available_credits)} available{held}\n"
            f"*Cycle:* {_date(overview.cycle.starts_at)} → {_date(overview.cycle.ends_at)} "
            f"(plan *{escape_mrkdwn(overview.team.plan.name)}*, {_credits(overview.team.plan.monthly_credits)} a month"
            f"{', unused credits roll over' if overview.team.plan.rollover else ', unused credits expire'})"
        ),
        _section(
            f"*Spent this cycle:* {_credits(overview.spent_credits)} — {_categories(overview.by_category)}\n"
            + (
                f"*You spent:* {_credits(overview.member_spent_credits)} — {_categories(overview.member_by_category)}"
                if overview.member_id is not None
                else "_You are not linked to a member of this team, so you can look people up but not spend._"
            )
        ),
    ]
    return message_blocks(blocks)


def usage_message(team: TeamInfo, cycle: CycleInfo, spends: Sequence[MemberSpend], *, who: str | None) -> list[Block]:
    title = f"Usage this cycle: {who}" if who else f"Usage this cycle: {team.name}"
    blocks: list[Block] = [
        _header(title),
        _context(f"{_date(cycle.starts_at)} → {_date(cycle.ends_at)}"),
    ]
    if not spends:
        blocks.append(_section("No credits spent this cycle."))
    for spend in spends:
        user = escape_mrkdwn(spend.email) if spend.email else "(no member)"
        blocks.append(_section(f"*{user}*: {_credits(spend.credits)} — {_categories(spend.by_category)}"))
    return fit(blocks, MAX_MESSAGE_BLOCKS, what="members")


HELP_TEXT = (
    "*Tributary for Slack*\n"
    "`/tributary lookup Jane Doe at Acme` — find a person by name and company\n"
    "`/tributary lookup jane@acme.com` — or by email address\n"
    "`/tributary lookup https://www.linkedin.com/in/…` — or by LinkedIn profile\n"
    "`/tributary credits` — the team's balance, this cycle's spend and yours\n"
    "`/tributary contacts [status:STATUS] [owner:@me] [company:acme]` — the team's contacts, export to CSV\n"
    "`/tributary accounts [owner:@me] [acme]` — the team's accounts (its contacts' companies) and owners\n"
    "`/tributary usage [@user]` — spend by member and category (admins)\n"
    "`/tributary connect CODE` — connect this workspace with a one-time code (`tributary slack connect-code TEAM`)\n"
    "`/tributary link @user EMAIL` — link a Slack user to a member (admins)\n"
    "`/tributary help` — this message"
)


def help_message(prefix: str | None = None) -> list[Block]:
    blocks: list[Block] = []
    if prefix:
        blocks.append(_section(prefix))
    blocks.append(_section(HELP_TEXT))
    return blocks


# ---- App Home ----------------------------------------------------------------------------


def home_view(
    overview: CreditOverview | None,
    accesses: Sequence[RecentAccess],
    refunds: Sequence[RefundView],
    team_usage: Sequence[MemberSpend] | None,
    *,
    problem: str | None = None,
) -> View:
    """The App Home tab. `team_usage` is given to admins only."""
    blocks: list[Block] = [_header("Tributary")]
    if overview is None:
        blocks.append(_section(problem or "This workspace is not connected to a Tributary team yet."))
        blocks.append(_section(HELP_TEXT))
        return View(type="home", blocks=fit(blocks, MAX_HOME_BLOCKS))
    blocks.extend(credits_message(overview)[1:])
    if problem:
        blocks.append(_context(problem))
    blocks.append(DividerBlock())
    blocks.append(_section("*Recent accesses*"))
    if not accesses:
        blocks.append(_context("None yet. Try `/tributary lookup jane@acme.com`."))
    for access in accesses:
        company = f" ({escape_mrkdwn(access.company)})" if access.company else ""
        cost = _credits(access.credits_charged) if access.credits_charged else "free"
        person = escape_mrkdwn(access.person_name)
        blocks.append(
            _context(
                f"{_date(access.settled_at)} · {access.kind.value} of *{person}*{company} · {cost}"
                + (f" · {escape_mrkdwn(access.member_email)}" if access.member_email else "")
            )
        )
    blocks.append(DividerBlock())
    blocks.append(_section("*Refunds*"))
    if not refunds:
        blocks.append(_context("No bounce refunds."))
    for refund in refunds:
        state = (
            "pending: credited when the next cycle starts" if refund.pending else f"granted {_date(refund.granted_at)}"
        )
        blocks.append(
            _context(f"{_credits(refund.amount_credits)} · {escape_mrkdwn(refund.description or 'refund')} · {state}")
        )
    if team_usage is not None:
        blocks.append(DividerBlock())
        blocks.append(_section("*Team usage this cycle (admins)*"))
        if not team_usage:
            blocks.append(_context("No credits spent this cycle."))
        for spend in team_usage:
            user = escape_mrkdwn(spend.email) if spend.email else "(no member)"
            blocks.append(_context(f"*{user}*: {_credits(spend.credits)} — {_categories(spend.by_category)}"))
    return View(type="home", blocks=fit(blocks, MAX_HOME_BLOCKS))
