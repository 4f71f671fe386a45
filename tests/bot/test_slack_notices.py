"""Refund notices: outbox -> Slack DM, through the loopback Web API, on both databases."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.notices import deliver_notices
from core.outbox import NoticeKind, RefundNotice, add_notice
from core.services import Services
from storage.db import run_write
from storage.timeutil import utcnow
from tests.bot.conftest import World, make_settings
from tests.slackapi.server import Reply


def _notice(world: World, member_email: str = "rep@acme.test") -> int:
    services = world.services
    member = services.accounts.member(member_email)
    access = services.data_requests.access_email(world.team_id, member.id, world.jane)
    payload = RefundNotice(
        decision_id=999_999,  # no decision row: the notice's own time stands in for the bounce time
        outcome="granted",
        reason="hard_bounce_within_window",
        credits=1,
        recipient="jane.doe@acmecorp.test",
        message_id="<m1@tributary.test>",
        data_request_id=access.request_id,
        sent_at=utcnow().isoformat(),
        bounce_class="hard",
        bounce_status="5.1.1",
        text="Your email to jane.doe@acmecorp.test bounced (5.1.1): 1 credit(s) will be refunded.",
    )
    return run_write(
        services.engine,
        lambda conn: add_notice(
            conn,
            NoticeKind.REFUND_DECISION,
            team_id=world.team_id,
            member_id=member.id,
            payload=payload,
            now=utcnow(),
        ),
    )


def _posted(world: World) -> list:
    return world.slack.calls_to("chat.postMessage", ok_only=True)


def test_a_refund_notice_becomes_a_dm_with_what_when_and_which_cycle(world: World) -> None:
    services = world.services
    notice_id = _notice(world)
    report = deliver_notices(services.outbox, services, services.settings, limit=10)
    assert (report.delivered, report.failed) == (1, 0)
    [lookup] = world.slack.calls_to("users.lookupByEmail")  # rep was not linked yet: found by email
    assert lookup.params["email"] == "rep@acme.test"
    [opened] = world.slack.calls_to("conversations.open")
    assert opened.params["users"] == "UREP"
    [post] = _posted(world)
    blocks = post.params["blocks"]
    text = blocks if isinstance(blocks, str) else json.dumps(blocks)
    cycle = services.accounts.current_cycle(world.team_id)
    today = utcnow().strftime("%Y-%m-%d")
    assert post.params["channel"] == "DREP" and "jane.doe@acmecorp.test" in text and "Refund: 1 credit" in text
    assert f"Accessed {today}" in text and f"sent from Tributary {today}" in text and "5.1.1" in text
    assert f"billing cycle starting {cycle.ends_at:%Y-%m-%d}" in text
    [stored] = services.outbox.notices()
    assert stored.id == notice_id and stored.attempts == 0
    assert services.outbox.notices(undelivered_only=True) == []
    again = deliver_notices(services.outbox, services, services.settings, limit=10, now=utcnow() + timedelta(days=1))
    assert again.delivered == 0 and len(_posted(world)) == 1


def test_500_then_429_is_retried_and_delivered_once(world: World) -> None:
    services = world.services
    _notice(world)
    world.slack.script("chat.postMessage", Reply(status=500), Reply(status=429, error="ratelimited", retry_after_s=1))
    report = deliver_notices(services.outbox, services, services.settings, limit=10)
    assert (report.delivered, report.failed) == (1, 0)
    statuses = [c.status for c in world.slack.calls_to("chat.postMessage")]
    assert statuses == [500, 429, 200]
    assert len(_posted(world)) == 1 and services.outbox.notices(undelivered_only=True) == []


def test_a_notice_that_keeps_failing_waits_and_survives_a_restart(world: World, db_url: str) -> None:
    services = world.services
    notice_id = _notice(world)
    world.slack.script("chat.postMessage", *[Reply(status=429, error="ratelimited", retry_after_s=1)] * 3)
    first = deliver_notices(services.outbox, services, services.settings, limit=10)
    assert (first.delivered, first.failed) == (0, 1) and "rate limited" in first.errors[0]
    [pending] = services.outbox.notices(undelivered_only=True)
    assert pending.id == notice_id and pending.attempts == 1 and "ratelimited" in pending.last_error
    # Not due yet: a pass right now sends nothing.
    assert deliver_notices(services.outbox, services, services.settings, limit=10).delivered == 0
    # A new process (fresh services on the same database) delivers it once it is due.
    restarted = Services.from_settings(make_settings(db_url, world.slack))
    try:
        later = utcnow() + timedelta(hours=1)
        report = deliver_notices(restarted.outbox, restarted, restarted.settings, limit=10, now=later)
        assert report.delivered == 1
    finally:
        restarted.engine.dispose()
    assert len(_posted(world)) == 1 and services.outbox.notices(undelivered_only=True) == []


def test_a_member_slack_cannot_find_is_retried_later_not_dropped(world: World) -> None:
    services = world.services
    services.accounts.add_member("acme", "ghost@acme.test")
    _notice(world, "ghost@acme.test")
    report = deliver_notices(services.outbox, services, services.settings, limit=10)
    assert report.failed == 1 and "no Slack user has the email ghost@acme.test" in report.errors[0]
    assert len(services.outbox.notices(undelivered_only=True)) == 1 and _posted(world) == []
