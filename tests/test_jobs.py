"""The job engine runs for real: a huey consumer (worker threads) executes enqueued tasks, on huey's
SQLite storage and on Redis (TRIBUTARY_TEST_REDIS_URL). Running a task twice, or twice at once,
changes nothing more than running it once."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from core.jobs.maintenance import DigestRun
from core.jobs.tasks import Jobs
from core.ledger import UsageMeta
from core.services import Services
from core.settings import Settings
from storage.models.enums import TransferKind
from storage.timeutil import utcnow
from tests.mailpeers.fixtures import running_jobs  # noqa: F401

REDIS_URL = os.environ.get("TRIBUTARY_TEST_REDIS_URL")
REDIS_SKIP = "Redis not configured: set TRIBUTARY_TEST_REDIS_URL to run the Redis queue cases"


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def jobs(request, engine, db_url, tmp_path):
    redis_url = None
    if request.param == "redis-queue":
        if not REDIS_URL:
            pytest.skip(REDIS_SKIP)
        redis_url = REDIS_URL
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        redis_url=redis_url,
        huey_sqlite_path=str(tmp_path / "huey.db"),
        huey_name=f"tributary-test-{uuid.uuid4().hex[:12]}",  # tests never share a queue
    )
    jobs = Jobs(Services(settings=settings, engine=engine))
    assert type(jobs.huey).__name__ == ("RedisHuey" if redis_url else "SqliteHuey")
    yield jobs
    jobs.huey.storage.flush_all()


def test_due_cycles_close_once_however_often_and_concurrently_the_task_runs(jobs, running_jobs) -> None:  # noqa: F811
    svc = jobs.services
    now = utcnow()
    svc.accounts.create_team("acme", plan="free", now=now - timedelta(days=70))
    svc.accounts.create_team("fresh", plan="free", now=now)
    # Four runs queued before two workers start: they run concurrently, in any order.
    results = [jobs.close_due_cycles(now) for _ in range(4)]
    running_jobs(jobs, workers=2)
    assert sum(r.get(blocking=True, timeout=60) for r in results) == 2  # acme's two ended cycles, once
    acme, fresh = svc.accounts.team("acme"), svc.accounts.team("fresh")
    assert [c.closed_at is None for c in svc.accounts.cycles(acme.id)] == [False, False, True]
    assert len(svc.accounts.cycles(fresh.id)) == 1
    grants = Counter(t.key for t in svc.ledger.transfers(acme.id) if t.kind == TransferKind.GRANT)
    assert len(grants) == 3 and set(grants.values()) == {1}  # one allotment per cycle, never twice
    assert jobs.close_due_cycles(now).get(blocking=True, timeout=60) == 0


def test_expired_holds_are_swept_once(jobs, running_jobs) -> None:  # noqa: F811
    svc = jobs.services
    now = utcnow()
    team = svc.accounts.create_team("acme", plan="free", now=now - timedelta(minutes=10))
    svc.ledger.hold(team.id, 5, key="h1", timeout_s=60, meta=UsageMeta(), now=now - timedelta(minutes=5))
    running_jobs(jobs, workers=2)
    results = [jobs.sweep_holds(now) for _ in range(3)]
    assert [r.get(blocking=True, timeout=60) for r in results].count(1) >= 1
    expiries = [t for t in svc.ledger.transfers(team.id) if t.kind == TransferKind.HOLD_EXPIRE]
    assert [t.amount_credits for t in expiries] == [5]
    assert svc.ledger.balance(team.id, now).available_credits == 100


def test_digest_slot_and_schedule(jobs, running_jobs) -> None:  # noqa: F811
    running_jobs(jobs, workers=1)
    run = jobs.send_digests(utcnow()).get(blocking=True, timeout=60)
    assert run == DigestRun(installed=False)  # this worker was started without a deliverer
    polled = jobs.poll_bounces().get(blocking=True, timeout=60)
    assert polled.skipped == "no bounce mailbox configured"
    at_quarter = utcnow().replace(minute=15, second=0, microsecond=0)
    assert jobs.due_periodic(at_quarter) == [
        "tributary.enrich.every_minute.pump",
        "tributary.every_15_min.crm_sync",
        "tributary.every_15_min.send_digests",
        "tributary.every_15_min.sync_mailboxes",
        "tributary.every_5_min.close_due_cycles",
        "tributary.every_5_min.process_bounces",
        "tributary.every_minute.poll_bounces",
        "tributary.every_minute.sweep_holds",
    ]
    assert jobs.due_periodic(at_quarter.replace(minute=16)) == [
        "tributary.enrich.every_minute.pump",
        "tributary.every_minute.poll_bounces",
        "tributary.every_minute.sweep_holds",
    ]


def test_a_worker_with_a_deliverer_sends_each_due_digest_once(jobs, running_jobs) -> None:  # noqa: F811
    svc = jobs.services
    now = utcnow()
    svc.accounts.create_team("acme", plan="free", now=now - timedelta(days=3))
    svc.accounts.add_member("acme", "boss@acme.test", role="admin")
    svc.digest_deliveries.set_preference("acme", "boss@acme.test", "daily", now=now - timedelta(days=3))
    delivered = []
    with_deliverer = Jobs(svc, deliver_digest=delivered.append)  # same queue name and storage
    running_jobs(with_deliverer, workers=2)
    runs = [with_deliverer.send_digests(now) for _ in range(3)]
    results = [r.get(blocking=True, timeout=60) for r in runs]
    assert sum(r.sent for r in results) == 1 and all(r.installed for r in results)
    assert [(d.team_name, d.member_email, d.digest.period.kind) for d in delivered] == [
        ("acme", "boss@acme.test", "daily")
    ]
