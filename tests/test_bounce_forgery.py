"""Forged and replayed bounces, on SQLite and PostgreSQL, over the real paths: sends through the
loopback SMTP relay (each with its VERP envelope sender), DSNs into intake, webhook events over HTTP,
and the SMTP re-check against the recipients' loopback mail servers (tests/mailnet).

A bounce counts only for the send it proves, and only once confirmed: none of these may refund a
live mailbox or poison the shared status of an address.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from itertools import count

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.serving import make_server

from core.bounces.intake import BounceEvent
from core.bounces.parse import BounceClass
from core.bounces.refunds import MAX_RECHECKS, RECHECK_INTERVAL, Outcome, RefundReason
from core.bounces.verp import verp_address, verp_token
from core.bounces.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from storage.db import read_transaction
from storage.models import EmailAddress, ScheduledRefund
from storage.models.enums import TransferKind
from tests.mailpeers.dsn import dsn_for
from tests.mailpeers.fixtures import (  # noqa: F401
    CATCH_ALL_DOMAIN,
    GREYLIST_DOMAIN,
    VERP_KEY,
    make_world,
    recipients_net,
    relay,
    relay_password,
)
from web.app import create_app


@pytest.fixture
def world(engine, db_url, tmp_path, relay, relay_password, recipients_net):  # noqa: F811
    return make_world(engine, db_url, tmp_path, relay, None, recipients_net)


def _status(world, address: str) -> str:
    with read_transaction(world.services.engine) as conn:
        return conn.execute(select(EmailAddress.status).where(EmailAddress.address == address)).scalar_one()


def _refunds(world, team: str) -> list[int]:
    svc = world.services
    team_id = svc.accounts.team(team).id
    svc.accounts.close_cycle(team_id, now=world.now + timedelta(days=40))
    return [t.amount_credits for t in svc.ledger.transfers(team_id) if t.kind == TransferKind.REFUND]


def _bought_and_sent(world, team: str, address: str, *, days_ago: int = 3):
    """A team that bought `address` (charged) and sent to it through Tributary."""
    svc, now = world.services, world.now
    rep = world.team(team, created=now - timedelta(days=days_ago + 1))
    person = world.person(f"Person {address}", address, domain=address.rpartition("@")[2])
    access = svc.data_requests.access_email(team, rep, person, now=now - timedelta(days=days_ago))
    assert access.charged_credits == 1
    sent = svc.sending.send(team, rep, address, subject="Hi", body="Hi", now=now - timedelta(days=1))
    return access, sent


def _ingest(world, raw: bytes):
    return world.services.bounce_intake.ingest_message(raw, source="file", now=world.now)


def test_wrong_recipient_is_refused_and_names_nobody(world) -> None:
    """The issue's reproduction: a DSN for kim's send naming zed@target.test must not touch zed."""
    world.person("Zed Target", "zed@target.test", domain="target.test")
    _, sent = _bought_and_sent(world, "acme", "kim@initech.test")
    result = _ingest(world, world.dsn(sent, "zed@target.test"))
    [outcome] = result.outcomes
    assert not outcome.matched and outcome.refusal == "recipient_mismatch"
    assert _status(world, "zed@target.test") == "verified"
    assert _status(world, "kim@initech.test") == "verified"
    assert world.services.refunds.decisions(world.services.accounts.team("acme").id) == []
    assert _refunds(world, "acme") == []


def test_message_id_alone_or_a_bad_token_proves_nothing(world) -> None:
    _, sent = _bought_and_sent(world, "acme", "vera@initech.test")
    original = world.accepted(sent.message_id).data
    # The genuine Message-ID, but addressed to the plain bounce address: no token.
    no_token = _ingest(world, dsn_for(original, "vera@initech.test", to="bounces@tributary.test"))
    # A token in the right shape whose MAC is wrong.
    forged = verp_token("not-our-key-" + "x" * 32, sent.send_id)
    bad_token = _ingest(world, dsn_for(original, "vera@initech.test", to=f"bounces+{forged}@tributary.test"))
    assert [o.refusal for o in no_token.outcomes + bad_token.outcomes] == ["no_proof", "no_proof"]
    assert _status(world, "vera@initech.test") == "verified"
    assert [u.refusal for u in world.services.bounce_intake.unmatched()] == ["no_proof", "no_proof"]


def test_a_token_of_one_send_with_the_message_id_of_another_is_refused(world) -> None:
    _, mine = _bought_and_sent(world, "acme", "vera@initech.test")
    _, theirs = _bought_and_sent(world, "globex", "walt@initech.test")
    # The attacker holds a token for their own send (they received it) and quotes another send's ID.
    foreign = dsn_for(world.accepted(theirs.message_id).data, "vera@initech.test",
                      to=world.accepted(mine.message_id).mail_from)
    [outcome] = _ingest(world, foreign).outcomes
    assert outcome.refusal == "message_id_mismatch"
    assert _status(world, "walt@initech.test") == _status(world, "vera@initech.test") == "verified"


def test_genuine_dsn_for_a_dead_mailbox_is_refunded_exactly_once_even_replayed(world) -> None:
    access, sent = _bought_and_sent(world, "acme", "vera@initech.test")
    genuine = world.dsn(sent)
    for _ in range(3):
        _ingest(world, genuine)
    # The same bounce re-wrapped by another MTA (new bounce Message-ID): a second bounce, no second refund.
    _ingest(world, world.dsn(sent, bounce_message_id="<rewrapped@mx2.example.test>"))
    decisions = world.services.refunds.decisions(world.services.accounts.team("acme").id)
    assert sorted(d.reason for d in decisions) == [RefundReason.ALREADY_REFUNDED, RefundReason.HARD_BOUNCE_IN_WINDOW]
    granted = next(d for d in decisions if d.outcome == Outcome.GRANTED)
    assert granted.confirmation == "confirmed" and granted.recheck_status == "invalid"
    assert _status(world, "vera@initech.test") == "invalid"
    assert _refunds(world, "acme") == [access.charged_credits] == [1]


def test_forged_dsn_for_a_live_mailbox_is_refused_and_changes_nothing_shared(world) -> None:
    """The recipient saw the envelope sender, so it can make a DSN with a valid token: the SMTP
    re-check finds the mailbox alive and the claim is refused."""
    _, sent = _bought_and_sent(world, "acme", "kim@initech.test")
    [outcome] = _ingest(world, world.dsn(sent)).outcomes
    decision = outcome.decision
    assert decision.outcome == Outcome.REFUSED and decision.reason == RefundReason.MAILBOX_ACCEPTS_MAIL
    assert decision.confirmation == "refused" and decision.recheck_status == "verified"
    assert _status(world, "kim@initech.test") == "verified"
    assert _refunds(world, "acme") == []
    notice = world.services.outbox.notices(team_id=decision.team_id)[0]
    assert "mailbox accepts mail" in notice.payload.text


def test_catch_all_bounce_waits_then_is_confirmed_only_by_another_teams_bounce(world) -> None:
    """The written rule for a re-check that cannot tell: re-check on a schedule; a proven hard
    bounce from another team's send confirms; otherwise refused as unconfirmed."""
    svc = world.services
    address = f"anna@{CATCH_ALL_DOMAIN}"
    _, acme_send = _bought_and_sent(world, "acme", address)
    [first] = _ingest(world, world.dsn(acme_send)).outcomes
    assert first.pending and first.decision is None
    # Not due yet: nothing happens; due: re-checked, still undecidable.
    assert svc.refunds.process_pending(now=world.now + RECHECK_INTERVAL / 2) == []
    [again] = svc.refunds.process_pending(now=world.now + RECHECK_INTERVAL)
    assert again.pending
    assert _status(world, address) == "verified"

    # Another team's own send to the same address bounces too: two independent proven claims.
    rep = world.team("globex", created=world.now - timedelta(days=4))
    globex_send = svc.sending.send("globex", rep, address, subject="Hi", body="Hi", now=world.now - timedelta(hours=2))
    [second] = _ingest(world, world.dsn(globex_send)).outcomes
    assert second.decision is not None and second.decision.confirmation == "confirmed"
    assert second.decision.confirmed_by_bounce_id == first.bounce_id
    [later] = svc.refunds.process_pending(now=world.now + 2 * RECHECK_INTERVAL)
    assert later.decision.outcome == Outcome.GRANTED and later.decision.confirmed_by_bounce_id == second.bounce_id
    assert _refunds(world, "acme") == [1]
    assert _status(world, address) == "invalid"


def test_catch_all_bounce_alone_is_refused_as_unconfirmed_after_the_last_recheck(world) -> None:
    svc = world.services
    address = f"anna@{CATCH_ALL_DOMAIN}"
    _, sent = _bought_and_sent(world, "acme", address)
    [outcome] = _ingest(world, world.dsn(sent)).outcomes
    for attempt in range(1, MAX_RECHECKS):
        [outcome] = svc.refunds.process_pending(now=world.now + attempt * RECHECK_INTERVAL)
    assert outcome.decision.reason == RefundReason.BOUNCE_UNCONFIRMED
    assert outcome.decision.recheck_status == "accept_all"
    assert _status(world, address) == "verified" and _refunds(world, "acme") == []


def test_greylisted_recheck_is_not_a_verdict_the_bounce_waits_for_the_schedule(world) -> None:
    """A 451 to the re-check says nothing either way: never invalid, never refused; re-checked later
    (the re-check does not retry in-call, so intake never waits on a greylisting server)."""
    svc = world.services
    address = f"gary@{GREYLIST_DOMAIN}"
    _, sent = _bought_and_sent(world, "acme", address)
    [outcome] = _ingest(world, world.dsn(sent)).outcomes
    assert outcome.pending and outcome.decision is None
    for attempt in range(1, MAX_RECHECKS):
        [outcome] = svc.refunds.process_pending(now=world.now + attempt * RECHECK_INTERVAL)
    assert outcome.decision.reason == RefundReason.BOUNCE_UNCONFIRMED
    assert outcome.decision.recheck_status == "unknown"
    assert _status(world, address) == "verified" and _refunds(world, "acme") == []


# ---- the webhook: per-team secrets ---------------------------------------------------------------


@pytest.fixture
def webhook_url(world):
    server = make_server("127.0.0.1", 0, create_app(world.services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v1/events/bounces"
    server.shutdown()
    thread.join(timeout=10)


def _post(url: str, event: dict, secret: str) -> requests.Response:
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body), "Content-Type": "application/json"}
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_another_teams_webhook_secret_matches_nothing_of_ours(world, webhook_url) -> None:
    svc = world.services
    _, sent = _bought_and_sent(world, "acme", "vera@initech.test")
    world.team("mallory", created=world.now - timedelta(days=1))
    mallory_secret = svc.webhook_secrets.show("mallory").secret
    event = {"recipient": "vera@initech.test", "message_id": sent.message_id, "type": "hard", "status": "5.1.1"}
    # Signed by mallory for acme's endpoint: refused outright.
    assert _post(f"{webhook_url}/acme", event, mallory_secret).status_code == 401
    # Signed by mallory for mallory's endpoint, naming acme's send: no cross-team match.
    own = _post(f"{webhook_url}/mallory", event, mallory_secret)
    assert own.status_code == 200 and own.json()["matched"] is False
    # Without a Message-ID or token, an event matches nothing, even on the right team.
    acme_secret = svc.webhook_secrets.show("acme").secret
    bare = _post(f"{webhook_url}/acme", {"recipient": "vera@initech.test", "type": "hard"}, acme_secret)
    assert bare.status_code == 200 and bare.json()["matched"] is False
    assert sorted(u.refusal for u in svc.bounce_intake.unmatched()) == ["no_proof", "unknown_send"]
    assert _status(world, "vera@initech.test") == "verified" and _refunds(world, "acme") == []
    # Rotating acme's secret: the old one stops working, the new one is acme's proof.
    new_secret = svc.webhook_secrets.rotate("acme").secret
    assert new_secret != acme_secret
    assert _post(f"{webhook_url}/acme", event, acme_secret).status_code == 401
    token_event = {"recipient": "vera@initech.test", "token": verp_token(VERP_KEY, sent.send_id), "type": "hard"}
    ok = _post(f"{webhook_url}/acme", token_event, new_secret)
    assert ok.status_code == 200 and ok.json()["refund"] == "granted"


def test_unknown_team_reads_like_a_bad_signature(world, webhook_url) -> None:
    response = _post(f"{webhook_url}/nosuchteam", {"recipient": "a@b.test", "type": "hard"}, "whatever")
    assert response.status_code == 401 and "signature" in response.json()["detail"]


def test_verp_address_shape() -> None:
    address = verp_address(VERP_KEY, 42, "bounces@tributary.test")
    assert address.startswith("bounces+s42-") and address.endswith("@tributary.test")
    assert verp_token(VERP_KEY, 42) != verp_token(VERP_KEY, 43)


def test_verp_key_rotation_new_key_signs_old_keys_still_verify() -> None:
    from core.bounces.verp import proven_send_ids, token_send_id

    old, new = "o" * 32, "n" * 32
    old_send = verp_address(old, 7, "bounces@tributary.test").encode()
    rotated = f"{new},{old}"
    assert verp_token(rotated, 8) == verp_token(new, 8)  # new sends are signed with the first key
    assert proven_send_ids(rotated, b"To: " + old_send) == {7}  # a bounce of an old send still proves it
    assert token_send_id(rotated, verp_token(old, 7)) == 7
    assert proven_send_ids(new, b"To: " + old_send) == set()  # once the old key is dropped, it proves nothing
    assert token_send_id(rotated, verp_token("x" * 32, 7)) is None


# ---- replays and duplicates, concurrently ------------------------------------------------------

_teams = count()
deliveries = st.lists(st.sampled_from(["same", "rewrapped", "webhook", "wrong_recipient"]), min_size=2, max_size=6)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=deliveries)
def test_concurrent_replays_and_duplicates_refund_exactly_once(world, kinds) -> None:
    svc = world.services
    team = f"t{next(_teams)}"
    address = f"gone{team}@initech.test"
    access, sent = _bought_and_sent(world, team, address)
    team_id = svc.accounts.team(team).id
    genuine = world.dsn(sent)

    def deliver(index: int, kind: str) -> None:
        if kind == "same":
            _ingest(world, genuine)
        elif kind == "rewrapped":
            _ingest(world, world.dsn(sent, bounce_message_id=f"<r{index}@mx.example.test>"))
        elif kind == "wrong_recipient":
            _ingest(world, world.dsn(sent, "someone.else@initech.test"))
        else:
            event = BounceEvent(address, sent.message_id, BounceClass.HARD, status_code="5.1.1",
                                reason="mailbox_not_found")
            svc.bounce_intake.ingest_event(event, f"webhook {index}".encode(), team_id=team_id, now=world.now)

    barrier = threading.Barrier(len(kinds))
    errors: list[BaseException] = []

    def run(index: int, kind: str) -> None:
        try:
            barrier.wait()
            deliver(index, kind)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    svc.refunds.process_pending(now=world.now)
    granted = [d for d in svc.refunds.decisions(team_id) if d.outcome == Outcome.GRANTED]
    provable = any(k != "wrong_recipient" for k in kinds)
    assert len(granted) == (1 if provable else 0)
    with read_transaction(svc.engine) as conn:
        scheduled = conn.execute(
            select(func.count()).select_from(ScheduledRefund).where(
                ScheduledRefund.idempotency_key == f"bounce-refund:{access.request_id}")
        ).scalar_one()
    assert scheduled == (1 if provable else 0)
