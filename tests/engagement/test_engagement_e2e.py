"""End to end on loopback, both databases: a send through the SMTP relay, the recipient's reply
delivered into the IMAP reply mailbox, the scheduled poll (run by a real huey consumer) hands it to
engagement and the address becomes likely_to_engage; a forged reply and a bounce in the same poll
take their usual path. Past the freshness window the address is re-checked (real DNS and SMTP)
before a charge and stays likely_to_engage; past the recency window it is verified again."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

from sqlalchemy import func, select, update

from core.jobs.tasks import Jobs
from storage.db import read_transaction, run_write
from storage.models import BounceIntake, EmailAddress, EmailSend
from storage.models.enums import EmailStatus
from tests.mailpeers.fixtures import (  # noqa: F401
    imap,
    make_world,
    recipients_net,
    relay,
    relay_password,
    running_jobs,
)

RESULT_TIMEOUT_S = 60
BODY = "Sounds good, let us talk on Tuesday."


def reply(sender: str, to: str, in_reply_to: str, when) -> bytes:
    return (
        f"From: Kim Reader <{sender}>\r\nTo: {to}\r\nSubject: Re: Hello\r\nDate: {format_datetime(when)}\r\n"
        f"Message-ID: <reply.{when.timestamp():.0f}.{sender}>\r\nIn-Reply-To: {in_reply_to}\r\n"
        f"References: {in_reply_to}\r\nContent-Type: text/plain\r\n\r\n{BODY}\r\n"
    ).encode()


def status_of(engine, address: str) -> str:
    with read_transaction(engine) as conn:
        return conn.execute(select(EmailAddress.status).where(EmailAddress.address == address)).scalar_one()


def test_send_reply_promote_recheck_and_return(
    engine, db_url, tmp_path, relay, imap, relay_password, running_jobs, recipients_net  # noqa: F811
) -> None:
    world = make_world(engine, db_url, tmp_path, relay, imap, recipients_net)
    svc, now = world.services, world.now
    kim = world.person("Kim Reader", "kim@initech.test")
    world.person("Lee Other", "live@initech.test")
    # Kim's address was verified before the send (the world's people are checked yesterday).
    long_ago = now - timedelta(days=45)
    run_write(engine, lambda conn: conn.execute(update(EmailAddress.__table__).values(checked_at=long_ago)))
    rep = world.team("acme", created=now - timedelta(days=60))
    sent_at, replied_at = now - timedelta(days=41), now - timedelta(days=40)
    to_kim = svc.sending.send("acme", rep, "kim@initech.test", subject="Hello", body="Hi Kim", now=sent_at)
    to_live = svc.sending.send("acme", rep, "live@initech.test", subject="Hello", body="Hi", now=sent_at)

    imap.deliver(reply("kim@initech.test", rep, to_kim.message_id, replied_at))
    imap.deliver(reply("live@initech.test", rep, to_kim.message_id, replied_at))  # quotes kim's send: forged
    imap.deliver(world.dsn(to_live))  # a bounce in the same poll goes down the bounce path as ever
    jobs = Jobs(svc)
    running_jobs(jobs, workers=1)
    polled = jobs.poll_bounces(replied_at + timedelta(hours=1)).get(blocking=True, timeout=RESULT_TIMEOUT_S)
    assert (polled.fetched, polled.replies, polled.bounces) == (3, 1, 1)
    assert imap.unseen() == 0

    assert status_of(engine, "kim@initech.test") == EmailStatus.LIKELY_TO_ENGAGE.value
    [evidence] = svc.engagement.evidence("kim@initech.test")
    assert (evidence.kind, evidence.last_seen_on) == ("reply", replied_at.date())
    with read_transaction(engine) as conn:
        replied = dict(conn.execute(select(EmailSend.recipient, EmailSend.replied_at)).all())
        intake = conn.execute(select(func.count()).select_from(BounceIntake)).scalar_one()
        raws = b"".join(conn.execute(select(BounceIntake.raw)).scalars())
    assert replied["kim@initech.test"] is not None and replied["live@initech.test"] is None
    assert intake == 2  # the forged reply (kept as before: no recipient) and the DSN; not kim's reply
    kims_reply = f"<reply.{replied_at.timestamp():.0f}.kim@initech.test>".encode()
    assert kims_reply not in raws and b"<reply." in raws  # her reply was not stored (the forged one was)

    # 40 days after the reply: past the 30-day freshness window, inside the 90-day recency window.
    beta = world.team("beta", created=now - timedelta(days=1))
    probes = recipients_net.connections()
    access = svc.data_requests.access_email("beta", beta, kim, now=now)
    assert recipients_net.connections() > probes  # re-checked over SMTP before the charge
    assert (access.charged_credits, access.email.status) == (1, EmailStatus.LIKELY_TO_ENGAGE)
    assert status_of(engine, "kim@initech.test") == EmailStatus.LIKELY_TO_ENGAGE.value

    # The recency window runs out: verified again.
    run = jobs.run_engagement(replied_at + timedelta(days=91)).get(blocking=True, timeout=RESULT_TIMEOUT_S)
    assert run.returned_to_verified == 1
    assert status_of(engine, "kim@initech.test") == EmailStatus.VERIFIED.value
