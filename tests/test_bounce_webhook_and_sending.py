"""The bounce webhook over real HTTP on loopback, and sending failures that must not leak secrets."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from core.bounces.refunds import Outcome
from core.bounces.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from core.errors import InvalidInput
from core.sending.smtp import SendFailed
from storage.db import read_transaction
from storage.models import EmailSend
from storage.models.enums import TransferKind
from tests.mailpeers.fixtures import (  # noqa: F401
    PASSWORD_ENV,
    make_world,
    recipients_net,
    relay,
    relay_password,
)
from tests.mailpeers.relay import RELAY_PASSWORD
from web.app import create_app


@pytest.fixture
def webhook(engine, db_url, tmp_path, relay, relay_password, recipients_net):  # noqa: F811
    world = make_world(engine, db_url, tmp_path, relay, None, recipients_net)
    server = make_server("127.0.0.1", 0, create_app(world.services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{server.server_port}/api/v1/events/bounces"
    server.shutdown()
    thread.join(timeout=10)


def _post(url: str, body: bytes, *, secret: str, timestamp: int | None = None, signature: str | None = None):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature or sign(secret, ts, body),
        "Content-Type": "application/json",
    }
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_webhook_refunds_once_and_refuses_bad_signatures_and_bodies(webhook) -> None:
    world, base = webhook
    svc, now = world.services, world.now
    vera = world.person("Vera Fied", "vera@initech.test")
    rep = world.team("acme", created=now - timedelta(days=3))
    url = f"{base}/acme"
    secret = svc.webhook_secrets.show("acme").secret
    svc.data_requests.access_email("acme", rep, vera, now=now - timedelta(days=2))
    sent = svc.sending.send("acme", rep, "vera@initech.test", subject="Hi", body="Hi", now=now - timedelta(days=1))
    event = {"recipient": "Vera@Initech.test", "message_id": sent.message_id, "type": "hard",
             "diagnostic": "550 5.1.1 no such user", "status": "5.1.1"}
    body = json.dumps(event).encode()

    # Wrong secret, tampered body, stale timestamp, missing headers: 401, nothing stored.
    assert _post(url, body, secret="wrong").status_code == 401
    tampered = sign(secret, str(int(time.time())), body + b" ")
    assert _post(url, body, secret=secret, signature=tampered).status_code == 401
    stale = int(time.time()) - 3600
    refused = _post(url, body, secret=secret, timestamp=stale)
    assert refused.status_code == 401 and "Timestamp" in refused.json()["detail"]
    assert requests.post(url, data=body, timeout=30).status_code == 401
    # The old shared endpoint is gone: every event names its team.
    assert _post(base, body, secret=secret).status_code == 404
    assert svc.bounce_intake.intake_rows() == []

    # Authenticated but wrong: 400 naming the field, kept as unparseable.
    bad = _post(url, json.dumps({**event, "type": "bouncy"}).encode(), secret=secret)
    assert bad.status_code == 400 and bad.json()["field"] == "type"
    not_json = _post(url, b"{not json", secret=secret)
    assert not_json.status_code == 400 and not_json.json()["field"] == "body"
    assert [r[2] for r in svc.bounce_intake.intake_rows()] == ["unparseable", "unparseable"]

    # Good: matched, refund granted; the same event three times is still one refund.
    for _ in range(3):
        ok = _post(url, body, secret=secret)
        assert ok.status_code == 200 and ok.json()["matched"] and ok.json()["refund"] == "granted"
    # A list with one bad item: the good one is processed, the bad one named and kept.
    mixed = _post(url, json.dumps([{**event, "type": "soft"}, {"recipient": "x"}]).encode(), secret=secret)
    assert mixed.status_code == 400
    results = mixed.json()["results"]
    assert results[0]["matched"] and results[0]["refund"] == "refused" and results[1]["field"] == "[1].recipient"

    team = svc.accounts.team("acme")
    assert [d.outcome for d in svc.refunds.decisions(team.id)] == [Outcome.GRANTED, Outcome.REFUSED]
    svc.accounts.close_cycle(team.id, now=now + timedelta(days=40))
    assert [t.amount_credits for t in svc.ledger.transfers(team.id) if t.kind == TransferKind.REFUND] == [1]


def test_unmatched_webhook_bounces_are_kept_and_listed(webhook) -> None:
    world, base = webhook
    world.team("acme", created=world.now)
    secret = world.services.webhook_secrets.show("acme").secret
    body = json.dumps({"recipient": "nobody@elsewhere.test", "message_id": "<unknown@x>", "type": "hard"}).encode()
    response = _post(f"{base}/acme", body, secret=secret)
    assert response.status_code == 200 and response.json()["matched"] is False
    [kept] = world.services.bounce_intake.unmatched()
    assert kept.recipient == "nobody@elsewhere.test" and kept.source == "webhook" and kept.refusal == "unknown_send"


def test_send_failures_are_recorded_and_never_reveal_the_password(
    engine, db_url, tmp_path, relay, relay_password, monkeypatch  # noqa: F811
) -> None:
    world = make_world(engine, db_url, tmp_path, relay, None)
    svc = world.services
    rep = world.team("acme", created=world.now)

    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises(SendFailed) as refused_login:
        svc.sending.send("acme", rep, "vera@initech.test", subject="Hi", body="Hi")
    assert "refused the login" in str(refused_login.value) and "not-the-password" not in str(refused_login.value)

    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(InvalidInput, match=PASSWORD_ENV):
        svc.sending.send("acme", rep, "vera@initech.test", subject="Hi", body="Hi")

    monkeypatch.setenv(PASSWORD_ENV, RELAY_PASSWORD)
    relay.recorder.refuse_rcpt.add("gone@initech.test")
    with pytest.raises(SendFailed, match="550"):
        svc.sending.send("acme", rep, "gone@initech.test", subject="Hi", body="Hi")
    with pytest.raises(InvalidInput, match="recipient"):
        svc.sending.send("acme", rep, "not an address", subject="Hi", body="Hi")

    with read_transaction(engine) as conn:
        rows = conn.execute(select(EmailSend.status, EmailSend.error)).all()
    assert [r.status for r in rows] == ["failed", "failed"]  # the missing-secret attempt recorded nothing
    assert all(RELAY_PASSWORD not in (r.error or "") and "not-the-password" not in (r.error or "") for r in rows)
    assert relay.recorder.accepted == []
