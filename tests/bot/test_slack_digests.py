"""Admin usage digests delivered as Slack DMs, over real HTTP to the loopback Web API, on both databases.

Core's scheduler runs them: `Jobs(services, deliver_digest=digest_deliverer(...))` (huey in immediate
mode, so the task runs in this thread) calls `DigestDeliveries.send_due_digests`. What Slack received
is read back from the loopback server's record of calls; what was spent is read from the ledger.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from huey import MemoryHuey
from slack_sdk.models.blocks import Block, HeaderBlock
from sqlalchemy import select

from bot.digests import CHART_FILENAME, CHART_NOTE_PREFIX, CHART_UPLOAD_ATTEMPTS, digest_blocks, digest_deliverer
from bot.messages import MAX_MESSAGE_BLOCKS
from bot.tokens import MAX_RETRIES_PER_CALL
from core.jobs.maintenance import DigestRun
from core.jobs.tasks import Jobs
from core.ledger import UsageMeta
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.services import Services
from core.usage.chart import render_chart
from core.usage.periods import Period, last_complete_period
from core.usage.spend import MemberSpend
from storage.db import read_transaction
from storage.models import DigestDeliveryRecord
from storage.models.digests import DeliveryStatus, DigestPeriod
from storage.models.enums import Category, DataRequestStatus, EmailStatus, Feature, PhoneKind, PhoneStatus, Role
from tests.bot.conftest import make_settings
from tests.slackapi.server import Call, Reply, SlackApiServer


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CREATED = utc(2026, 3, 1)
NOW = utc(2026, 3, 9, 6)  # Monday morning: last week's digest (2-8 March) is due
WEEK = last_complete_period(DigestPeriod.WEEKLY, NOW)
ADMIN_EMAIL = "admin@acme.test"  # the loopback Slack's UADMIN (tests/bot/conftest.py SLACK_USERS)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MEMBER_LINE = re.compile(r"^(?P<who>.+): (?P<credits>\d+) credits?$")


@dataclass
class Digests:
    services: Services
    slack: SlackApiServer
    jobs: Jobs
    team_id: int
    admin_id: int

    def run(self, now: datetime) -> DigestRun:
        """One run of core's digest task, as the scheduler would enqueue it."""
        return self.jobs.send_digests(now).get()

    def records(self) -> list:
        with read_transaction(self.services.engine) as conn:
            table = DigestDeliveryRecord.__table__
            return conn.execute(select(table).order_by(table.c.id)).all()

    def posted(self) -> list[Call]:
        """chat.postMessage calls answered with HTTP 200 (an `ok: false` answer would count too)."""
        return self.slack.calls_to("chat.postMessage", ok_only=True)


@pytest.fixture
def digests(db_url: str, slack_api: SlackApiServer) -> Iterator[Digests]:
    services = Services.from_settings(make_settings(db_url, slack_api))
    accounts = services.accounts
    team = accounts.create_team("acme", plan="basic", anchor_day=1, now=CREATED)
    admin = accounts.add_member("acme", ADMIN_EMAIL, role=Role.ADMIN)
    accounts.add_member("acme", "rep@acme.test")
    accounts.add_member("acme", "rep2@acme.test")
    services.identities.connect("T1", "acme")
    services.digest_deliveries.set_preference("acme", ADMIN_EMAIL, "weekly", now=CREATED)
    huey = MemoryHuey(f"digests-{uuid.uuid4().hex[:12]}", immediate=True, utc=True)
    jobs = Jobs(services, huey, deliver_digest=digest_deliverer(services, services.settings))
    yield Digests(services, slack_api, jobs, team.id, admin.id)
    services.engine.dispose()


def spend(d: Digests) -> None:
    """Spend through core: an email and a mobile access (data requests), an AI charge, and spend
    either side of last week that its digest must leave out."""
    services = d.services
    jane = add_person(
        services.engine,
        NewPerson(
            full_name="Jane Doe",
            company="Acme Corp",
            domain="acmecorp.test",
            emails=[NewEmail("jane.doe@acmecorp.test", EmailStatus.VERIFIED, 96, utc(2026, 3, 2))],
            phones=[NewPhone("+15125550199", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")],
        ),
    )
    requests = services.data_requests
    email = requests.access_email("acme", "rep@acme.test", jane, feature=Feature.SLACK, now=utc(2026, 3, 3, 10))
    mobile = requests.access_mobile("acme", "rep@acme.test", jane, feature=Feature.SLACK, now=utc(2026, 3, 4, 10))
    assert email.status == mobile.status == DataRequestStatus.CHARGED
    rep2 = services.accounts.member("rep2@acme.test", d.team_id).id
    ledger = services.ledger
    ledger.charge(d.team_id, 3, key="ai-1", meta=UsageMeta(Category.AI, Feature.CLI, rep2), now=utc(2026, 3, 6, 12))
    outside = UsageMeta(Category.ENRICHMENT, Feature.CSV, rep2)
    ledger.charge(d.team_id, 2, key="sunday-before", meta=outside, now=utc(2026, 3, 1, 12))
    ledger.charge(d.team_id, 5, key="this-monday", meta=outside, now=utc(2026, 3, 9, 1))


@dataclass(frozen=True)
class LedgerFigures:
    spent_credits: int
    by_category: dict[str, int]
    by_member: dict[str, int]


def ledger_figures(d: Digests, period: Period) -> LedgerFigures:
    """What the ledger's usage log says was spent in the period: the digest's reference figures."""
    rows = d.services.ledger.usage_log(d.team_id, include_refunds=False, since=period.start, until=period.end)
    by_category: Counter[str] = Counter()
    by_member: Counter[str] = Counter()
    for row in rows:
        by_category[row.category or "other"] += row.credits
        by_member[row.user or "(no member)"] += row.credits
    return LedgerFigures(sum(r.credits for r in rows), dict(by_category), dict(by_member))


# ---- reading what Slack received ---------------------------------------------------------


def blocks_of(call: Call) -> list[dict]:
    blocks = call.params["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def summary_fields(blocks: list[dict]) -> dict[str, str]:
    """The section with fields, as {title: value} ("*Spent*\\n12 credits" -> {"Spent": "12 credits"})."""
    [section] = [b for b in blocks if b["type"] == "section" and b.get("fields")]
    titled = (f["text"].split("\n", 1) for f in section["fields"])
    return {title.strip("*"): value for title, value in titled}


def member_lines(blocks: list[dict]) -> list[str]:
    """The context lines after the "*By member*" section."""
    [start] = [
        i
        for i, b in enumerate(blocks)
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*By member*")
    ]
    return [e["text"] for b in blocks[start + 1 :] if b["type"] == "context" for e in b["elements"]]


def parse_members(lines: list[str]) -> list[tuple[str, int]]:
    parsed = []
    for line in lines:
        match = MEMBER_LINE.match(line)
        assert match, f"not a member line: {line!r}"
        parsed.append((match["who"], int(match["credits"])))
    return parsed


def parse_categories(value: str) -> dict[str, int]:
    return {label: int(credits) for label, credits in (part.rsplit(" ", 1) for part in value.split(", "))}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR", "the first PNG chunk must be IHDR"
    return struct.unpack(">II", data[16:24])


# ---- tests -------------------------------------------------------------------------------


def test_a_due_digest_is_a_block_kit_dm_with_the_ledgers_figures_and_the_chart(digests: Digests) -> None:
    d, slack = digests, digests.slack
    spend(d)
    d.services.identities.link(d.team_id, ADMIN_EMAIL, "UADMIN")
    figures = ledger_figures(d, WEEK)
    # The seeded spend landed where it should, so the comparisons below are not vacuous.
    assert figures == LedgerFigures(12, {"email": 1, "mobile": 8, "ai": 3}, {"rep@acme.test": 9, "rep2@acme.test": 3})

    assert d.run(NOW) == DigestRun(installed=True, sent=1)

    assert slack.calls_to("users.lookupByEmail") == []  # the admin was linked already
    assert [c.method for c in slack.calls] == [
        "conversations.open",
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert all(c.token == "xoxb-test" for c in slack.calls if c.method != "upload")
    [opened] = slack.calls_to("conversations.open")
    assert opened.params["users"] == "UADMIN"
    dm = "DADMIN"  # what the loopback conversations.open answered for UADMIN
    [post] = d.posted()
    assert post.params["channel"] == dm
    assert post.params["text"] == "Usage digest for acme: 12 credits spent"

    blocks = blocks_of(post)
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "Usage digest: acme"
    assert blocks[1]["elements"][0]["text"] == f"weekly, {WEEK.label} (UTC)"
    fields = summary_fields(blocks)
    assert fields["Spent"] == f"{figures.spent_credits} credits"
    assert parse_categories(fields["By category"]) == figures.by_category
    available = d.services.ledger.balance(d.team_id, NOW).available_credits
    assert fields["Balance"] == f"{available} credits available"
    members = parse_members(member_lines(blocks))
    assert dict(members) == figures.by_member and len(members) == len(figures.by_member)  # one line each
    assert [who for who, _ in members] == ["rep@acme.test", "rep2@acme.test"]  # most credits first

    # The chart: the PNG core renders for this digest, uploaded and shared into the same DM.
    [url] = slack.calls_to("files.getUploadURLExternal")
    assert url.params["filename"] == CHART_FILENAME == "tributary-spend.png"
    [upload] = slack.calls_to("upload")
    file_id = upload.params["file_id"]
    png = slack.uploads[file_id]
    assert png.startswith(PNG_SIGNATURE) and len(png) > 2000
    width, height = png_size(png)
    assert width >= 200 and height >= 100
    assert int(url.params["length"]) == len(png)
    digest = d.services.usage_digests.build_for(d.team_id, WEEK, now=NOW)
    assert png == render_chart(digest)
    [done] = slack.calls_to("files.completeUploadExternal")
    files = done.params["files"]
    files = json.loads(files) if isinstance(files, str) else files
    assert done.params["channel_id"] == dm and [f["id"] for f in files] == [file_id]

    [record] = d.records()
    assert (record.status, record.attempts, record.period_start) == (DeliveryStatus.DELIVERED, 1, WEEK.start)


def test_an_unlinked_admin_is_found_by_email_once_and_the_link_is_kept(digests: Digests) -> None:
    d, slack = digests, digests.slack
    assert d.services.identities.slack_user_of(d.admin_id) is None
    assert d.run(NOW).sent == 1
    [lookup] = slack.calls_to("users.lookupByEmail")
    assert lookup.params["email"] == ADMIN_EMAIL
    assert d.services.identities.slack_user_of(d.admin_id) == "UADMIN"
    assert [c.params["users"] for c in slack.calls_to("conversations.open")] == ["UADMIN"]

    # A second digest (yesterday's daily one, now that the admin asked for daily) uses the stored link.
    d.services.digest_deliveries.set_preference("acme", ADMIN_EMAIL, "daily", now=NOW)
    assert d.run(NOW).sent == 1
    assert len(slack.calls_to("users.lookupByEmail")) == 1
    assert [c.params["users"] for c in slack.calls_to("conversations.open")] == ["UADMIN", "UADMIN"]
    assert [c.params["channel"] for c in d.posted()] == ["DADMIN", "DADMIN"]
    kinds = [(r.period_kind, r.status) for r in d.records()]
    assert kinds == [(DigestPeriod.WEEKLY, DeliveryStatus.DELIVERED), (DigestPeriod.DAILY, DeliveryStatus.DELIVERED)]


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        ([Reply(status=500)] * (1 + MAX_RETRIES_PER_CALL), "internal_error"),  # outlasts the in-call retries
        ([Reply(error="channel_not_found")], "channel_not_found"),  # ok: false is not retried in the call
    ],
    ids=["http-500", "ok-false"],
)
def test_a_failed_post_is_recorded_retried_later_and_then_sent_only_once(
    digests: Digests, replies: list[Reply], error: str
) -> None:
    d, slack = digests, digests.slack
    spend(d)
    slack.script("chat.postMessage", *replies)

    assert d.run(NOW) == DigestRun(installed=True, sent=0)
    # Every scripted failure was used up (ok: false is HTTP 200 too, so count calls, not statuses).
    assert len(slack.calls_to("chat.postMessage")) == len(replies)
    assert slack.calls_to("files.getUploadURLExternal") == []  # no chart without its message
    [failed] = d.records()
    assert failed.status == DeliveryStatus.FAILED and failed.delivered_at is None
    assert "SlackApiError" in failed.last_error and error in failed.last_error

    later = NOW + timedelta(minutes=15)  # the next run of the every-15-minutes task
    assert d.run(later).sent == 1
    *_, post = slack.calls_to("chat.postMessage")
    assert len(slack.calls_to("chat.postMessage")) == len(replies) + 1 and post.params["channel"] == "DADMIN"
    assert summary_fields(blocks_of(post))["Spent"] == f"{ledger_figures(d, WEEK).spent_credits} credits"
    assert len(slack.calls_to("upload")) == 1 and len(slack.calls_to("files.completeUploadExternal")) == 1
    [delivered] = d.records()
    assert (delivered.id, delivered.status, delivered.attempts) == (failed.id, DeliveryStatus.DELIVERED, 2)

    # Delivered: running the scheduler again, at the same time or the first run's, sends nothing more.
    posts_before = len(slack.calls_to("chat.postMessage"))
    assert d.run(later).sent == 0 and d.run(NOW).sent == 0
    assert len(slack.calls_to("chat.postMessage")) == posts_before == len(replies) + 1
    assert len(slack.calls_to("upload")) == 1


def completed_file_ids(call: Call) -> list[str]:
    files = call.params["files"]
    return [f["id"] for f in (json.loads(files) if isinstance(files, str) else files)]


def test_a_failed_chart_upload_does_not_post_the_message_twice(
    digests: Digests, caplog: pytest.LogCaptureFixture
) -> None:
    d, slack = digests, digests.slack
    spend(d)
    posted_ts = "1773036000.000100"  # scripted, so the edit can be matched to the message it edits
    slack.script("chat.postMessage", Reply(body={"ok": True, "channel": "DADMIN", "ts": posted_ts}))
    # Every try at the chart fails: `ok: false` is HTTP 200, so only the deliverer's own retries repeat it.
    slack.script("files.completeUploadExternal", *[Reply(error="internal_error")] * CHART_UPLOAD_ATTEMPTS)

    with caplog.at_level(logging.WARNING, logger="bot.digests"):
        assert d.run(NOW) == DigestRun(installed=True, sent=1)  # the message went out: that is delivered
    assert len(slack.calls_to("files.completeUploadExternal")) == CHART_UPLOAD_ATTEMPTS > 1  # retried, then given up
    assert len(slack.calls_to("files.getUploadURLExternal")) == CHART_UPLOAD_ATTEMPTS
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.digests" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "chart not attached" in warnings[0] and "internal_error" in warnings[0]

    # The posted message is edited in place (same channel and ts) to say the chart is missing, and why.
    [post] = d.posted()
    [update] = slack.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == ("DADMIN", posted_ts)
    *kept, note = blocks_of(update)
    assert kept == blocks_of(post)  # the digest itself is unchanged
    assert note == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f":warning: {CHART_NOTE_PREFIX}internal_error"}],
    }
    assert CHART_NOTE_PREFIX == "The spend chart could not be attached: "
    assert update.params["text"] == post.params["text"] == "Usage digest for acme: 12 credits spent"
    [record] = d.records()
    assert (record.status, record.attempts) == (DeliveryStatus.DELIVERED, 1) and record.delivered_at is not None

    # Later runs, and a rerun of the first, say nothing more to Slack: no second message, chart or note.
    calls_before = len(slack.calls)
    assert d.run(NOW + timedelta(minutes=15)).sent == 0 and d.run(NOW).sent == 0
    assert len(slack.calls) == calls_before
    assert len(d.posted()) == 1 and len(slack.calls_to("chat.postMessage")) == 1
    [record] = d.records()
    assert (record.status, record.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_a_rate_limited_chart_upload_waits_out_retry_after_and_attaches_the_chart(digests: Digests) -> None:
    d, slack = digests, digests.slack
    spend(d)
    slack.script("files.completeUploadExternal", Reply(status=429, retry_after_s=1))

    assert d.run(NOW) == DigestRun(installed=True, sent=1)

    limited, completed = slack.calls_to("files.completeUploadExternal")
    assert (limited.status, completed.status) == (429, 200)
    assert completed.received_monotonic_s - limited.received_monotonic_s >= 1.0  # Retry-After was waited out
    [file_id] = completed_file_ids(completed)
    assert completed.params["channel_id"] == "DADMIN"
    digest = d.services.usage_digests.build_for(d.team_id, WEEK, now=NOW)
    assert slack.uploads[file_id] == render_chart(digest)
    assert slack.calls_to("chat.update") == []  # no note: the chart is there
    assert len(d.posted()) == 1 and len(slack.calls_to("chat.postMessage")) == 1
    [record] = d.records()
    assert (record.status, record.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_member_emails_are_escaped_for_mrkdwn(digests: Digests) -> None:
    d = digests
    digest = d.services.usage_digests.build_for(d.team_id, WEEK, now=NOW)
    # Slack reads <...> as links, mentions and broadcasts; & starts an entity.
    hostile = MemberSpend(member_id=None, email="<!channel>&r@acme.test", credits=1)
    blocks = [b.to_dict() for b in digest_blocks(replace(digest, by_member=(hostile,)))]
    assert member_lines(blocks) == ["&lt;!channel&gt;&amp;r@acme.test: 1 credit"]


def test_a_team_with_many_spenders_stays_within_slacks_block_limit(digests: Digests) -> None:
    d = digests
    members = 80
    # 1 + 2 + ... + 80 credits: more than the plan's 1000, so a top-up first.
    d.services.ledger.grant(d.team_id, 5000, key="topup", expires_at=None, now=utc(2026, 3, 5))
    for i in range(members):
        member = d.services.accounts.add_member("acme", f"m{i:02d}@acme.test")
        meta = UsageMeta(Category.EXPORT, Feature.CSV, member.id)
        d.services.ledger.charge(d.team_id, i + 1, key=f"export-{i}", meta=meta, now=utc(2026, 3, 5, 12))
    digest = d.services.usage_digests.build_for(d.team_id, WEEK, now=NOW)
    assert len(digest.by_member) == members

    blocks = digest_blocks(digest)
    assert all(isinstance(b, Block) for b in blocks) and isinstance(blocks[0], HeaderBlock)
    assert len(blocks) == MAX_MESSAGE_BLOCKS == 50  # more than fit: cut to the limit, not past it
    as_json = [b.to_dict() for b in blocks]  # to_dict validates each block against Slack's limits

    d.services.identities.link(d.team_id, ADMIN_EMAIL, "UADMIN")
    assert d.run(NOW).sent == 1
    [post] = d.posted()
    posted = blocks_of(post)
    assert posted == as_json and len(posted) <= 50
    lines = member_lines(posted)
    *shown, more = lines
    shown_members = parse_members(shown)
    # The biggest spenders first, each once; the last block says how many were left out.
    expected = [(f"m{i:02d}@acme.test", i + 1) for i in reversed(range(members))]
    assert shown_members == expected[: len(shown_members)] and len(shown_members) >= 40
    assert more == f"…and {members - len(shown_members)} more members not shown (Slack shows 50 at most)"
    assert summary_fields(posted)["Spent"] == f"{sum(range(1, members + 1))} credits"
