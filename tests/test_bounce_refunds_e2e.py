"""End to end on loopback: access (charged), send through an SMTP relay (STARTTLS + AUTH LOGIN),
a DSN delivered into an IMAP mailbox, the poller and the cycle close run by a real huey consumer.

Both databases. Time: accesses and sends are dated in the past (`now=`), the bounce arrives now,
the cycle close runs at a future instant so that every team's cycle has ended.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from core.bounces.refunds import Outcome, RefundReason
from core.jobs.tasks import Jobs
from storage.db import read_transaction
from storage.models import Bounce, BounceIntake, EmailAddress, RefundDecision, ScheduledRefund
from storage.models.enums import TransferKind
from tests.mailpeers.dsn import MALFORMED_MIME, dsn_without_recipient
from tests.mailpeers.fixtures import (  # noqa: F401
    imap,
    make_world,
    recipients_net,
    relay,
    relay_password,
    running_jobs,
)

RESULT_TIMEOUT_S = 60


def _email_status(engine, address: str) -> tuple[str, list[str]]:
    with read_transaction(engine) as conn:
        stmt = select(EmailAddress.status, EmailAddress.reasons).where(EmailAddress.address == address)
        row = conn.execute(stmt).one()
    return row.status, list(row.reasons)


def test_refund_lands_once_in_next_cycle_and_every_refusal_is_recorded(
    engine, db_url, tmp_path, relay, imap, relay_password, running_jobs, recipients_net  # noqa: F811
) -> None:
    world = make_world(engine, db_url, tmp_path, relay, imap, recipients_net)
    svc, now = world.services, world.now
    vera = world.person("Vera Fied", "vera@initech.test")
    soft = world.person("Sof Tee", "soft@initech.test")
    mo = world.person("Mo Bile", "mo@initech.test", mobile="+447700900123")
    late = world.person("Lay Tee", "late@initech.test")

    rep = world.team("acme", created=now - timedelta(days=3))
    acme = svc.accounts.team("acme")
    access = now - timedelta(days=2)
    charged = svc.data_requests.access_email("acme", rep, vera, now=access)
    assert charged.charged_credits == 1
    assert svc.data_requests.access_email("acme", rep, soft, now=access).charged_credits == 1
    assert svc.data_requests.access_mobile("acme", rep, mo, now=access).charged_credits == 8

    late_rep = world.team("later", created=now - timedelta(days=41))
    svc.data_requests.access_email("later", late_rep, late, now=now - timedelta(days=40))

    sent_at = now - timedelta(days=1)
    s_vera = svc.sending.send("acme", rep, "vera@initech.test", subject="Hello", body="Hi Vera", now=sent_at)
    s_soft = svc.sending.send("acme", rep, "soft@initech.test", subject="Hello", body="Hi", now=sent_at)
    s_mo = svc.sending.send("acme", rep, "mo@initech.test", subject="Hello", body="Hi", now=sent_at)
    # Day 31 after the access: outside the refund window.
    day_31 = now - timedelta(days=9)
    s_late = svc.sending.send("later", late_rep, "late@initech.test", subject="Hi", body="Hi", now=day_31)
    assert s_vera.data_request_id == charged.request_id and s_mo.data_request_id is None
    # The relay saw STARTTLS, AUTH LOGIN as our user, and each send's own VERP envelope sender.
    assert all(a.tls and a.authenticated_as == "relay-user" for a in relay.recorder.accepted)
    senders = [a.mail_from for a in relay.recorder.accepted]
    assert len(set(senders)) == 4
    assert all(re.fullmatch(r"bounces\+s\d+-[a-z2-7]{16}@tributary\.test", s) for s in senders)

    vera_dsn = world.dsn(s_vera)
    for _ in range(3):  # the same DSN delivered three times
        imap.deliver(vera_dsn)
    imap.deliver(world.dsn(s_soft, status="4.2.2", diagnostic="452 4.2.2 Mailbox full"))
    imap.deliver(world.dsn(s_mo))
    imap.deliver(world.dsn(s_late))
    # Bad input in the same mailbox: kept as unparseable, the rest still processed.
    imap.deliver(MALFORMED_MIME)
    imap.deliver(dsn_without_recipient())

    jobs = Jobs(svc)
    running_jobs(jobs)
    polled = jobs.poll_bounces().get(blocking=True, timeout=RESULT_TIMEOUT_S)
    assert polled.fetched == 8 and polled.unparseable == 2
    assert imap.unseen() == 0
    again = jobs.poll_bounces().get(blocking=True, timeout=RESULT_TIMEOUT_S)
    assert again.fetched == 0

    decisions = {d.send_id: d for d in svc.refunds.decisions(acme.id)}
    assert decisions[s_vera.send_id].outcome == Outcome.GRANTED and decisions[s_vera.send_id].credits == 1
    assert decisions[s_soft.send_id].reason == RefundReason.SOFT_BOUNCE
    assert decisions[s_mo.send_id].reason == RefundReason.NOT_BOUGHT
    [late_decision] = svc.refunds.decisions(svc.accounts.team("later").id)
    assert late_decision.reason == RefundReason.SENT_AFTER_WINDOW
    # The evidence: each hard bounce was confirmed by the SMTP re-check finding the mailbox gone.
    assert decisions[s_vera.send_id].confirmation == "confirmed"
    assert decisions[s_vera.send_id].recheck_status == "invalid"
    assert decisions[s_soft.send_id].confirmation == "not_needed"

    # Nothing is granted before the cycle closes; then exactly once, at the next cycle's start.
    assert [t for t in svc.ledger.transfers(acme.id) if t.kind == TransferKind.REFUND] == []
    balance_before = svc.ledger.balance(acme.id).available_credits
    close_at = now + timedelta(days=40)
    assert jobs.close_due_cycles(close_at).get(blocking=True, timeout=RESULT_TIMEOUT_S) >= 2
    assert jobs.close_due_cycles(close_at).get(blocking=True, timeout=RESULT_TIMEOUT_S) == 0  # idempotent
    refunds = [t for t in svc.ledger.transfers(acme.id) if t.kind == TransferKind.REFUND]
    assert [t.amount_credits for t in refunds] == [1]
    first_new_cycle = svc.accounts.cycles(acme.id)[1]
    assert refunds[0].effective_at == first_new_cycle.starts_at
    assert balance_before == 90  # 100 - 1 - 1 - 8: the mobile charge stays
    assert [t for t in svc.ledger.transfers(svc.accounts.team("later").id) if t.kind == TransferKind.REFUND] == []

    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(ScheduledRefund)).scalar_one() == 1
        assert conn.execute(select(ScheduledRefund.idempotency_key)).scalar_one() == (
            f"bounce-refund:{charged.request_id}"
        )
        # Three deliveries of one DSN: one intake row received three times, one bounce.
        assert conn.execute(select(func.count()).select_from(Bounce).where(
            Bounce.recipient == "vera@initech.test")).scalar_one() == 1
        assert conn.execute(select(func.max(BounceIntake.times_received))).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(RefundDecision)).scalar_one() == 4
    unparseable = svc.bounce_intake.intake_rows(status="unparseable")
    assert sorted(code for _, _, _, code, _ in unparseable) == ["dsn_without_recipients", "malformed_mime"]

    # The member is told, for every decision; the granted one says how much.
    notices = svc.outbox.notices(team_id=acme.id)
    assert len(notices) == 3 and all(n.member_id == svc.accounts.member(rep, acme.id).id for n in notices)
    [granted] = [n for n in notices if n.payload.outcome == "granted"]
    assert granted.payload.credits == 1 and "vera@initech.test" in granted.payload.text

    # The shared record is downgraded for everyone; a soft bounce leaves it alone.
    assert _email_status(engine, "vera@initech.test") == ("invalid", ["mailbox_not_found"])
    assert _email_status(engine, "mo@initech.test")[0] == "invalid"
    assert _email_status(engine, "soft@initech.test")[0] == "verified"

    # The usage log with refunds shows every decision and the granted credits; without, none.
    log = svc.refunds.usage_log(acme.id)
    assert sorted(r.action for r in log if r.kind == TransferKind.REFUND) == [
        "refund", "refund_refused", "refund_refused", "refund_scheduled"
    ]
    assert [r.credits for r in log if r.action == "refund"] == [-1]
    assert all(r.kind != TransferKind.REFUND for r in svc.refunds.usage_log(acme.id, include_refunds=False))
