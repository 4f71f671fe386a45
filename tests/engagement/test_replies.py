"""The engagement rule on both databases: which reply promotes which address, the recency window,
delivered sends as weaker evidence, and (hypothesis) that no reply without a matching send to its
own address ever promotes anything."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, update

from core.accounts import Accounts
from core.engagement import Engagement, ReplyResult
from core.engagement.headers import reply_headers
from core.people.contacts import NewEmail, NewPerson, add_person
from core.sending.relays import Relays
from storage.db import read_transaction, run_write
from storage.models import Bounce, BounceIntake, EmailAddress, EmailSend
from storage.models.enums import EmailStatus

NOW = datetime.fromisoformat("2026-06-01T12:00:00+00:00")
_S = EmailSend.__table__
_E = EmailAddress.__table__
ADDRESSES = ("kim@initech.test", "lee@initech.test", "max@initech.test", "ann@catchall.test")


@pytest.fixture
def world(engine: Engine):
    """Four shared addresses; team acme sent one message to each of the first three."""
    accounts = Accounts(engine)
    accounts.create_team("acme")
    rep = accounts.add_member("acme", "rep@acme.test")
    relay = Relays(engine, accounts).set_relay("acme", host="127.0.0.1", port=2525, starttls=False)
    checked = NOW - timedelta(days=10)
    for address in ADDRESSES:
        status = EmailStatus.ACCEPT_ALL if "catchall" in address else EmailStatus.VERIFIED
        add_person(engine, NewPerson(full_name=address.split("@")[0].title() + " Person",
                                     emails=[NewEmail(address, status, 90, checked)]))  # fmt: skip
    sends = {a: send(engine, rep.team_id, rep.id, relay.id, a, NOW - timedelta(days=2)) for a in ADDRESSES[:3]}
    return Engagement(engine, window_days=90, delivery_grace_hours=72), sends


def send(engine: Engine, team_id: int, member_id: int, relay_id: int, to: str, at: datetime, status="sent") -> str:
    message_id = f"<{to.split('@')[0]}.{at.timestamp():.0f}.{status}@acme.test>"
    run_write(engine, lambda conn: conn.execute(insert(_S).values(
        team_id=team_id, member_id=member_id, relay_id=relay_id, message_id=message_id, recipient=to,
        subject="Hello", status=status, created_at=at, sent_at=at if status == "sent" else None,
    )))  # fmt: skip
    return message_id


def statuses(engine: Engine) -> dict[str, str]:
    with read_transaction(engine) as conn:
        return dict(conn.execute(select(_E.c.address, _E.c.status)).all())


def checked_at(engine: Engine, address: str) -> datetime:
    with read_transaction(engine) as conn:
        return conn.execute(select(_E.c.checked_at).where(_E.c.address == address)).scalar_one()


def test_a_reply_from_the_recipient_promotes_it_for_the_window(engine: Engine, world) -> None:
    engagement, sends = world
    before = statuses(engine)
    replied = NOW - timedelta(days=1)
    outcome = engagement.observe_reply(
        "KIM@initech.test", sends["kim@initech.test"], None, replied, now=NOW
    )
    assert outcome.result == ReplyResult.ENGAGED
    after = statuses(engine)
    assert after == {**before, "kim@initech.test": EmailStatus.LIKELY_TO_ENGAGE.value}
    assert checked_at(engine, "kim@initech.test").date() == replied.date()  # the freshness window runs from here
    [evidence] = engagement.evidence("kim@initech.test")
    assert (evidence.kind, evidence.last_seen_on, evidence.times) == ("reply", replied.date(), 1)
    # The same reply seen again (reply mailbox and a connected mailbox): counted once.
    engagement.observe_reply("kim@initech.test", None, f"<x@y.test> {sends['kim@initech.test']}", replied, now=NOW)
    assert engagement.evidence("kim@initech.test")[0].times == 1

    assert engagement.run_clock(NOW + timedelta(days=85)).returned_to_verified == 0
    assert statuses(engine)["kim@initech.test"] == EmailStatus.LIKELY_TO_ENGAGE.value
    assert engagement.run_clock(NOW + timedelta(days=91)).returned_to_verified == 1
    assert statuses(engine) == before  # verified again; its check is old, so it is re-checked before a charge
    assert engagement.run_clock(NOW + timedelta(days=92)).returned_to_verified == 0


def test_forged_and_unrelated_replies_change_nothing(engine: Engine, world) -> None:
    engagement, sends = world
    accounts = Accounts(engine)
    rep = accounts.member("rep@acme.test", accounts.team("acme").id)
    relay_id = Relays(engine, accounts).relay_for(rep.team_id).id
    failed = send(engine, rep.team_id, rep.id, relay_id, "max@initech.test", NOW - timedelta(days=3), status="failed")
    before = statuses(engine)
    kim = sends["kim@initech.test"]
    cases = [
        ("lee@initech.test", kim, ReplyResult.NOT_THE_RECIPIENT),  # someone else quoting kim's message
        ("kim@initech.test", "<never-sent@acme.test>", ReplyResult.NO_MATCHING_SEND),
        ("kim@initech.test", "", ReplyResult.NO_MATCHING_SEND),
        ("max@initech.test", failed, ReplyResult.NO_MATCHING_SEND),  # a send that never went out
        ("ann@catchall.test", kim, ReplyResult.NOT_THE_RECIPIENT),
    ]
    for sender, in_reply_to, expected in cases:
        assert engagement.observe_reply(sender, in_reply_to, None, NOW, now=NOW).result == expected
    # A "reply" dated before the send it answers.
    early = engagement.observe_reply("kim@initech.test", kim, None, NOW - timedelta(days=5), now=NOW)
    assert early.result == ReplyResult.NO_MATCHING_SEND
    assert statuses(engine) == before
    assert all(engagement.evidence(a) == [] for a in ADDRESSES)


def test_a_reply_does_not_revive_a_retired_address_or_promote_an_old_one(engine: Engine, world) -> None:
    engagement, sends = world
    run_write(engine, lambda conn: conn.execute(
        update(_E).where(_E.c.address == "lee@initech.test").values(status=EmailStatus.UPDATE_REQUIRED.value)
    ))  # fmt: skip
    outcome = engagement.observe_reply("lee@initech.test", sends["lee@initech.test"], None, NOW, now=NOW)
    assert (outcome.result, outcome.genuine) == (ReplyResult.RETIRED, True)
    assert statuses(engine)["lee@initech.test"] == EmailStatus.UPDATE_REQUIRED.value
    # Seen only after the window passed: counted, promotes nothing.
    kim = sends["kim@initech.test"]
    late = engagement.observe_reply("kim@initech.test", kim, None, NOW, now=NOW + timedelta(days=95))
    assert late.result == ReplyResult.TOO_OLD
    assert statuses(engine)["kim@initech.test"] == EmailStatus.VERIFIED.value
    assert engagement.evidence("kim@initech.test")[0].times == 1


def test_a_delivered_send_is_weaker_evidence_and_never_promotes(engine: Engine, world) -> None:
    engagement, sends = world
    before = statuses(engine)
    # lee's send bounced (a bounce row names it): not delivered.
    with read_transaction(engine) as conn:
        lee_send = conn.execute(select(_S.c.id).where(_S.c.recipient == "lee@initech.test")).scalar_one()
    run_write(engine, lambda conn: conn.execute(insert(BounceIntake.__table__).values(
        id=1, source="file", raw_sha256="0" * 64, raw=b"x", status="parsed", times_received=1, received_at=NOW,
    )))  # fmt: skip
    run_write(engine, lambda conn: conn.execute(insert(Bounce.__table__).values(
        intake_id=1, dedupe_key="k", recipient="lee@initech.test", bounce_class="hard", received_at=NOW,
        send_id=lee_send,
    )))  # fmt: skip
    assert engagement.run_clock(NOW).deliveries_counted == 0  # within the grace period: not yet
    assert engagement.run_clock(NOW + timedelta(days=2)).deliveries_counted == 2  # kim and max
    assert engagement.run_clock(NOW + timedelta(days=3)).deliveries_counted == 0  # each send once
    assert [(e.kind, e.times) for e in engagement.evidence("kim@initech.test")] == [("delivered", 1)]
    assert engagement.evidence("lee@initech.test") == []
    assert statuses(engine) == before


AUTO_REPLY = (
    b"From: Kim <kim@initech.test>\r\nTo: rep@acme.test\r\nSubject: Out of office\r\n"
    b"Auto-Submitted: auto-replied\r\nIn-Reply-To: <kim.1@acme.test>\r\n\r\nI am away.\r\n"
)
HUMAN_REPLY = (
    b"From: Kim <kim@initech.test>\r\nTo: rep@acme.test\r\nSubject: Re: Hello\r\n"
    b"Date: Mon, 01 Jun 2026 10:00:00 +0000\r\nIn-Reply-To: <kim.1@acme.test>\r\n"
    b"References: <kim.0@acme.test> <kim.1@acme.test>\r\n\r\nSounds good.\r\n"
)


def test_only_a_persons_reply_counts_as_one() -> None:
    headers = reply_headers(HUMAN_REPLY)
    assert headers is not None and headers.from_address == "kim@initech.test"
    assert headers.received_at == NOW.replace(hour=10)
    assert reply_headers(AUTO_REPLY) is None
    assert reply_headers(HUMAN_REPLY.replace(b"In-Reply-To: <kim.1@acme.test>\r\nReferences: "
                                              b"<kim.0@acme.test> <kim.1@acme.test>\r\n", b"")) is None  # fmt: skip
    assert reply_headers(HUMAN_REPLY.replace(b"kim@initech.test", b"MAILER-DAEMON@initech.test")) is None


# --- property: nothing promotes without a matching send to the replying address ---------------

_ids = st.one_of(
    st.sampled_from(["kim", "lee", "max", "ann"]).map(
        lambda n: f"<{n}.{(NOW - timedelta(days=2)).timestamp():.0f}.sent@acme.test>"
    ),
    st.from_regex(r"<[a-z0-9.]{1,12}@[a-z]{1,8}\.test>", fullmatch=True),
    st.text(max_size=30),
)
_header = st.lists(_ids, max_size=4).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sender=st.one_of(st.sampled_from(ADDRESSES + ("rep@acme.test",)), st.emails()),
    in_reply_to=_header,
    references=_header,
    days_ago=st.integers(min_value=-3, max_value=200),
)
def test_replies_with_random_headers_promote_only_a_matching_recipient(
    engine: Engine, world, sender: str, in_reply_to: str, references: str, days_ago: int
) -> None:
    engagement, sends = world
    run_write(engine, lambda conn: conn.execute(
        update(_E).values(status=EmailStatus.VERIFIED.value).where(_E.c.status == EmailStatus.LIKELY_TO_ENGAGE.value)
    ))  # fmt: skip
    before = statuses(engine)
    received = NOW - timedelta(days=days_ago)
    outcome = engagement.observe_reply(sender, in_reply_to, references, received, now=NOW)
    after = statuses(engine)
    changed = {a for a in after if after[a] != before[a]}
    named = set(in_reply_to.split()) | set(references.split())
    matching = {a for a, message_id in sends.items() if message_id in " ".join(named) and a == sender.lower()}
    sent_before = received >= NOW - timedelta(days=2)
    if matching and sent_before and received >= NOW - timedelta(days=90):
        assert outcome.result == ReplyResult.ENGAGED and changed == matching
    else:
        assert changed == set() and outcome.result != ReplyResult.ENGAGED
    assert all(after[a] in (before[a], EmailStatus.LIKELY_TO_ENGAGE.value) for a in after)
