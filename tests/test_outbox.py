"""The notice outbox: nothing lost when delivery fails, retried with exponential backoff, leased."""

from __future__ import annotations

from datetime import timedelta

from core.accounts import Accounts
from core.outbox import NOTICE_BASE_BACKOFF_S, NoticeKind, Outbox, RefundNotice, add_notice, backoff_s
from storage.db import run_write
from storage.timeutil import utcnow


def _notice(i: int) -> RefundNotice:
    return RefundNotice(
        i, "granted", "hard_bounce_within_window", 1, f"p{i}@x.test", f"<{i}@x>", i, "2026-01-01", "hard", "5.1.1",
        "text",
    )


def test_failed_delivery_comes_back_after_backoff_and_delivered_never_returns(engine) -> None:
    accounts = Accounts(engine)
    team = accounts.create_team("acme")
    member = accounts.add_member("acme", "rep@acme.test")
    now = utcnow()
    ids = run_write(engine, lambda conn: [
        add_notice(conn, NoticeKind.REFUND_DECISION, team_id=team.id, member_id=member.id, payload=_notice(i), now=now)
        for i in range(3)
    ])
    outbox = Outbox(engine)
    first = outbox.pending_notices(10, now=now)
    assert [n.id for n in first] == ids and first[0].payload == _notice(0)
    # Leased: a second deliverer at the same time gets nothing.
    assert outbox.pending_notices(10, now=now) == []
    outbox.mark_delivered(ids[0], now=now)
    due = outbox.mark_failed(ids[1], "slack: ratelimited", now=now)
    assert due == now + timedelta(seconds=NOTICE_BASE_BACKOFF_S)
    due_retry_after = outbox.mark_failed(ids[2], "slack: 429", retry_after_s=3600, now=now)
    assert due_retry_after == now + timedelta(seconds=3600)
    # Before the backoff: nothing; after it: the failed one again, with its error and attempt count.
    assert outbox.pending_notices(10, now=now + timedelta(seconds=NOTICE_BASE_BACKOFF_S - 1)) == []
    [again] = outbox.pending_notices(10, now=due)
    assert again.id == ids[1] and again.attempts == 1 and again.last_error == "slack: ratelimited"
    # Exponential: the second failure waits twice as long.
    assert outbox.mark_failed(ids[1], "again", now=due) == due + timedelta(seconds=2 * NOTICE_BASE_BACKOFF_S)
    outbox.mark_delivered(ids[0], now=now + timedelta(days=1))  # idempotent
    assert {n.id for n in outbox.notices(undelivered_only=True)} == {ids[1], ids[2]}


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff_s(100) == 6 * 3600
