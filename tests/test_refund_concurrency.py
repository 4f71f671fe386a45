"""Two workers processing the same bounces at once grant one refund (both databases)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.bounces.refunds import Outcome, RefundReason
from core.jobs.tasks import Jobs
from storage.db import read_transaction
from storage.models import RefundDecision, ScheduledRefund
from storage.models.enums import TransferKind
from tests.mailpeers.fixtures import make_world, recipients_net, relay, relay_password, running_jobs  # noqa: F401


def _world_with_bounces(engine, db_url, tmp_path, relay, net):  # noqa: F811
    world = make_world(engine, db_url, tmp_path, relay, None, net)
    svc, now = world.services, world.now
    vera = world.person("Vera Fied", "vera@initech.test")
    rep = world.team("acme", created=now - timedelta(days=3))
    access = svc.data_requests.access_email("acme", rep, vera, now=now - timedelta(days=2))
    first = svc.sending.send("acme", rep, "vera@initech.test", subject="One", body="1", now=now - timedelta(days=1))
    second = svc.sending.send("acme", rep, "vera@initech.test", subject="Two", body="2", now=now - timedelta(hours=1))
    # Two different DSNs (one per send) for the same bought address, one of them delivered twice:
    # stored, not yet decided, as a mailbox poll that died after storing would leave them.
    dsns = [world.dsn(first), world.dsn(second)]
    for raw in dsns + dsns[:1]:
        svc.bounce_intake.ingest_message(raw, source="imap", decide=False)
    return world, access, (first, second)


def _assert_one_refund(world, access) -> None:
    svc = world.services
    team = svc.accounts.team("acme")
    decisions = svc.refunds.decisions(team.id)
    assert sorted((d.outcome, d.reason) for d in decisions) == [
        (Outcome.GRANTED, RefundReason.HARD_BOUNCE_IN_WINDOW),
        (Outcome.REFUSED, RefundReason.ALREADY_REFUNDED),
    ]
    with read_transaction(svc.engine) as conn:
        assert conn.execute(select(func.count()).select_from(ScheduledRefund)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(RefundDecision)).scalar_one() == 2
    svc.accounts.close_cycle(team.id, now=world.now + timedelta(days=40))
    refunds = [t for t in svc.ledger.transfers(team.id) if t.kind == TransferKind.REFUND]
    assert [t.amount_credits for t in refunds] == [access.charged_credits] == [1]
    assert len(svc.outbox.notices(team_id=team.id)) == 2


@pytest.mark.slow
def test_two_threads_deciding_the_same_bounces_grant_one_refund(
    engine, db_url, tmp_path, relay, relay_password, recipients_net  # noqa: F811
) -> None:
    world, access, _ = _world_with_bounces(engine, db_url, tmp_path, relay, recipients_net)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            world.services.refunds.process_pending()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _assert_one_refund(world, access)


@pytest.mark.slow
def test_two_huey_workers_running_the_decide_task_at_once_grant_one_refund(
    engine, db_url, tmp_path, relay, relay_password, running_jobs, recipients_net  # noqa: F811
) -> None:
    world, access, _ = _world_with_bounces(engine, db_url, tmp_path, relay, recipients_net)
    jobs = Jobs(world.services)
    results = [jobs.process_bounces() for _ in range(4)]  # enqueued before the consumer starts
    running_jobs(jobs, workers=2)
    # Each run saw the pending bounces (at most two); whatever the interleaving, one refund.
    assert all(0 <= r.get(blocking=True, timeout=60) <= 2 for r in results)
    _assert_one_refund(world, access)
