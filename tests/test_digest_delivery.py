"""Digest preferences and sending: each due digest delivered exactly once, failures retried."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.accounts import Accounts
from core.errors import InvalidInput, NotFound
from core.ledger import UsageMeta
from core.usage.delivery import DigestDeliveries, DigestDelivery
from core.usage.digest import UsageDigests
from storage.db import make_engine, read_transaction
from storage.models import DigestDeliveryRecord
from storage.models.digests import DeliveryStatus, DigestPeriod
from storage.models.enums import Category, Feature, Role


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CREATED = utc(2026, 3, 1)
NOW = utc(2026, 3, 9, 6)  # Monday morning: yesterday's daily and last week's weekly digests are due
LEASE_S = 300


def _service(engine: Engine) -> DigestDeliveries:
    accounts = Accounts(engine)
    return DigestDeliveries(engine, UsageDigests(engine, accounts.ledger, accounts), accounts, lease_s=LEASE_S)


@pytest.fixture
def svc(engine: Engine) -> DigestDeliveries:
    service = _service(engine)
    accounts = service.accounts
    team = accounts.create_team("acme", plan="basic", anchor_day=1, now=CREATED)
    accounts.add_member("acme", "boss@acme.test", role=Role.ADMIN)
    accounts.add_member("acme", "ops@acme.test", role=Role.ADMIN)
    rep = accounts.add_member("acme", "rep@acme.test")
    meta = UsageMeta(category=Category.EMAIL, feature=Feature.SLACK, member_id=rep.id)
    accounts.ledger.charge(team.id, 3, key="c1", meta=meta, now=utc(2026, 3, 4, 12))
    accounts.ledger.charge(team.id, 2, key="c2", meta=meta, now=utc(2026, 3, 8, 12))
    return service


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: list[DigestDelivery] = []

    def __call__(self, delivery: DigestDelivery) -> None:
        with self.lock:
            self.got.append(delivery)

    def keys(self) -> list[tuple[str, str, str, datetime]]:
        return [(d.team_name, d.member_email, d.digest.period.kind.value, d.digest.period.start) for d in self.got]


def _records(engine: Engine) -> list:
    with read_transaction(engine) as conn:
        return conn.execute(select(DigestDeliveryRecord.__table__).order_by(DigestDeliveryRecord.id)).all()


def test_preferences_are_for_admins_and_validated(svc: DigestDeliveries) -> None:
    pref = svc.set_preference("acme", "boss@acme.test", "weekly")
    assert (pref.member_email, pref.period) == ("boss@acme.test", DigestPeriod.WEEKLY)
    svc.set_preference("acme", "boss@acme.test", "Daily")  # an update, not a second row
    assert [(p.member_email, p.period) for p in svc.preferences("acme")] == [("boss@acme.test", DigestPeriod.DAILY)]
    with pytest.raises(InvalidInput, match="member rep@acme.test: not an admin of team 'acme'"):
        svc.set_preference("acme", "rep@acme.test", "weekly")
    with pytest.raises(InvalidInput, match="period: 'monthly' is not one of daily, weekly, off"):
        svc.set_preference("acme", "boss@acme.test", "monthly")
    with pytest.raises(NotFound):
        svc.set_preference("acme", "ghost@acme.test", "weekly")
    assert [p.period for p in svc.preferences("acme")] == [DigestPeriod.DAILY]  # nothing half-written


def test_due_digests_are_delivered_once(svc: DigestDeliveries, engine: Engine) -> None:
    assert svc.send_due_digests(NOW, Recorder()) == 0  # nobody asked for digests yet
    svc.set_preference("acme", "boss@acme.test", "weekly")
    svc.set_preference("acme", "ops@acme.test", "daily")
    first = Recorder()
    assert svc.send_due_digests(NOW, first) == 2
    assert sorted(first.keys()) == [
        ("acme", "boss@acme.test", "weekly", utc(2026, 3, 2)),
        ("acme", "ops@acme.test", "daily", utc(2026, 3, 8)),
    ]
    by_kind = {d.digest.period.kind: d.digest for d in first.got}
    assert by_kind[DigestPeriod.WEEKLY].spent_credits == 5 and by_kind[DigestPeriod.DAILY].spent_credits == 2
    assert all(d.chart_png().startswith(b"\x89PNG") for d in first.got)

    again = Recorder()
    assert svc.send_due_digests(NOW + timedelta(hours=3), again) == 0 and again.got == []
    assert [r.status for r in _records(engine)] == [DeliveryStatus.DELIVERED] * 2

    # The next day: the new daily digest only; the weekly one is not due until next Monday.
    tuesday = Recorder()
    assert svc.send_due_digests(utc(2026, 3, 10, 6), tuesday) == 1
    assert tuesday.keys() == [("acme", "ops@acme.test", "daily", utc(2026, 3, 9))]

    svc.set_preference("acme", "ops@acme.test", "off")
    assert svc.send_due_digests(utc(2026, 3, 11, 6), Recorder()) == 0


def test_no_digest_for_a_period_before_the_team_existed(svc: DigestDeliveries) -> None:
    svc.accounts.create_team("newco", plan="free", now=utc(2026, 3, 9, 3))  # after last week and yesterday ended
    svc.accounts.add_member("newco", "own@newco.test", role=Role.ADMIN)
    svc.accounts.add_member("newco", "day@newco.test", role=Role.ADMIN)
    svc.set_preference("newco", "own@newco.test", "weekly")
    svc.set_preference("newco", "day@newco.test", "daily")
    assert svc.send_due_digests(NOW, Recorder()) == 0
    tuesday = Recorder()
    assert svc.send_due_digests(utc(2026, 3, 10, 6), tuesday) == 1  # Monday: newco's first whole day
    assert tuesday.keys() == [("newco", "day@newco.test", "daily", utc(2026, 3, 9))]


def test_failing_delivery_is_not_marked_and_is_retried(svc: DigestDeliveries, engine: Engine) -> None:
    svc.set_preference("acme", "boss@acme.test", "weekly")
    svc.set_preference("acme", "ops@acme.test", "daily")

    def flaky(delivery: DigestDelivery) -> None:
        if delivery.member_email == "boss@acme.test":
            raise ConnectionError("slack unreachable")

    assert svc.send_due_digests(NOW, flaky) == 1  # ops got hers; boss's failed
    failed = [r for r in _records(engine) if r.status == DeliveryStatus.FAILED]
    assert len(failed) == 1 and failed[0].last_error == "ConnectionError: slack unreachable"
    assert failed[0].delivered_at is None

    retry = Recorder()
    assert svc.send_due_digests(NOW + timedelta(minutes=15), retry) == 1
    assert retry.keys() == [("acme", "boss@acme.test", "weekly", utc(2026, 3, 2))]
    assert retry.got[0].delivery_id == failed[0].id  # the same delivery, retried
    assert svc.send_due_digests(NOW + timedelta(minutes=30), Recorder()) == 0
    assert {(r.status, r.attempts) for r in _records(engine) if r.id == failed[0].id} == {("delivered", 2)}


class WorkerDied(BaseException):
    """Not an Exception: like a killed process, it skips the failure bookkeeping."""


def test_a_dead_workers_claim_is_retried_after_its_lease(svc: DigestDeliveries) -> None:
    svc.set_preference("acme", "boss@acme.test", "weekly")

    def die(delivery: DigestDelivery) -> None:
        raise WorkerDied

    with pytest.raises(WorkerDied):
        svc.send_due_digests(NOW, die)
    assert svc.send_due_digests(NOW + timedelta(seconds=LEASE_S - 1), Recorder()) == 0  # still claimed
    late = Recorder()
    assert svc.send_due_digests(NOW + timedelta(seconds=LEASE_S + 1), late) == 1
    assert late.keys() == [("acme", "boss@acme.test", "weekly", utc(2026, 3, 2))]


def test_a_second_worker_skips_a_digest_being_delivered(svc: DigestDeliveries, db_url: str) -> None:
    """Worker A is inside `deliver` while worker B runs the whole schedule: B sends nothing."""
    svc.set_preference("acme", "boss@acme.test", "weekly")
    inside, release = threading.Event(), threading.Event()
    a_calls: list[DigestDelivery] = []
    a_result: list[int] = []

    def slow(delivery: DigestDelivery) -> None:
        a_calls.append(delivery)
        inside.set()
        assert release.wait(60)

    worker_a = threading.Thread(target=lambda: a_result.append(svc.send_due_digests(NOW, slow)))
    worker_a.start()
    assert inside.wait(60)
    engine_b = make_engine(db_url)
    try:
        b_calls = Recorder()
        assert _service(engine_b).send_due_digests(NOW, b_calls) == 0 and b_calls.got == []
    finally:
        release.set()
        worker_a.join(60)
        engine_b.dispose()
    assert a_result == [1] and len(a_calls) == 1


def test_concurrent_workers_deliver_each_digest_exactly_once(engine: Engine, db_url: str) -> None:
    service = _service(engine)
    expected = set()
    for t in range(4):
        name = f"team{t}"
        service.accounts.create_team(name, plan="free", anchor_day=1, now=CREATED)
        for a, period in enumerate(("daily", "weekly", "daily")):
            email = f"admin{a}@{name}.test"
            service.accounts.add_member(name, email, role=Role.ADMIN)
            service.set_preference(name, email, period)
            expected.add((name, email, period))
    got = Recorder()
    results: list[int] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        own_engine = make_engine(db_url)
        try:
            barrier.wait(60)
            results.append(_service(own_engine).send_due_digests(NOW, got))
        finally:
            own_engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    counts = Counter((team, email, kind) for team, email, kind, _ in got.keys())
    assert set(counts) == expected and set(counts.values()) == {1}, counts
    assert sum(results) == len(expected) == 12
    assert len(_records(engine)) == 12
    assert service.send_due_digests(NOW, got) == 0
