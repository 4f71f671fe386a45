"""Enrichment jobs through the API, run by a real huey consumer (SQLite queue), on SQLite and
PostgreSQL: 202 with the exact cost preview, the job's progress, the streamed result, cancel,
another team's job not found, idempotent submission."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator

import pytest
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR

from core.jobs.consumer import start_in_process
from storage.models.enums import TransferKind
from tests.api.conftest import ApiWorld, make_world

WAIT_S = 60


@pytest.fixture
def job_world(db_url: str, tmp_path) -> Iterator[ApiWorld]:
    world = make_world(db_url, huey_sqlite_path=str(tmp_path / "huey.db"), api_job_dir=str(tmp_path / "jobs"))
    yield world
    world.services.engine.dispose()


@pytest.fixture
def finished(job_world: ApiWorld) -> Iterator[threading.Event]:
    """Set when the consumer has run (or failed) a task: an event, not a sleep."""
    done = threading.Event()
    huey = job_world.services.job_queue.huey

    @huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR)
    def _on_done(signal, task, exc=None):
        done.set()

    consumer = start_in_process(job_world.services.job_queue, workers=1, periodic=False)
    yield done
    consumer.stop()


def _auth(world: ApiWorld, key: str | None = None) -> dict:
    return {"Authorization": f"Bearer {key or world.key}"}


def test_json_rows_job_runs_on_the_worker_and_streams_its_result(job_world: ApiWorld, finished) -> None:
    client = job_world.client()
    rows = [
        {"email": "jane.doe@acmecorp.test", "note": "secret deal"},
        {"email": "ravi@globex.test", "note": ""},
        {"email": "unknown@nowhere.test", "note": None},
    ]
    created = client.post("/api/v1/enrichment/jobs?email=true&label=crm", json={"rows": rows}, headers=_auth(job_world))
    assert created.status_code == 202, created.get_json()
    body = created.get_json()
    job_id = body["data"]["id"]
    preview = body["meta"]["cost_preview"]
    # The exact maximum: two matched people whose email the team has not paid for, at 1 credit each.
    assert preview["rows"] == 3 and preview["matched_rows"] == 2 and preview["max_credits"] == 2
    assert finished.wait(WAIT_S), "the worker did not run the job"
    view = client.get(f"/api/v1/enrichment/jobs/{job_id}", headers=_auth(job_world)).get_json()["data"]
    assert view["status"] == "done" and view["progress"]["done_rows"] == 3 and view["credits_charged"] == 1
    result = client.get(f"/api/v1/enrichment/jobs/{job_id}/result", headers=_auth(job_world))
    assert result.status_code == 200 and result.mimetype == "text/csv"
    out = list(csv.DictReader(io.StringIO(result.get_data(as_text=True))))
    assert [r["tributary_email_status"] for r in out] == ["verified", "accept_all", "unavailable"]
    assert out[0]["tributary_email"] == "jane.doe@acmecorp.test" and out[0]["tributary_credits_charged"] == "1"
    charges = [t for t in job_world.services.ledger.transfers(job_world.team_id)
               if t.kind in (TransferKind.POST, TransferKind.SPEND)]
    assert [(c.amount_credits, c.meta.feature) for c in charges] == [(1, "api")]
    # Another team: not found, nothing revealed.
    for url in (f"/api/v1/enrichment/jobs/{job_id}", f"/api/v1/enrichment/jobs/{job_id}/result"):
        theirs = client.get(url, headers=_auth(job_world, job_world.other_key))
        assert theirs.status_code == 404 and "crm" not in theirs.get_data(as_text=True)
    assert client.post(
        f"/api/v1/enrichment/jobs/{job_id}/cancel", headers=_auth(job_world, job_world.other_key)
    ).status_code == 404


def test_csv_upload_with_a_cap_and_idempotent_submission(job_world: ApiWorld, finished) -> None:
    client = job_world.client()
    data = "Full Name,Work Email\nJane Doe,jane.doe@acmecorp.test\n"
    headers = {**_auth(job_world), "Content-Type": "text/csv", "Idempotency-Key": "upload-1"}
    first = client.post("/api/v1/enrichment/jobs?email=true&mobile=true&max_credits=5", data=data, headers=headers)
    assert first.status_code == 202, first.get_json()
    assert first.get_json()["meta"]["cost_preview"]["max_credits"] == 5  # 1 + 8, capped at 5
    again = client.post("/api/v1/enrichment/jobs?email=true&mobile=true&max_credits=5", data=data, headers=headers)
    assert again.status_code == 202 and again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert finished.wait(WAIT_S)
    job_id = first.get_json()["data"]["id"]
    view = client.get(f"/api/v1/enrichment/jobs/{job_id}", headers=_auth(job_world)).get_json()["data"]
    # The cap is a ceiling: the email (1) fits, the mobile (8) does not, so the row is left
    # "not enriched: spend cap reached" and the job is incomplete (resumable with a larger cap).
    assert view["status"] == "incomplete" and view["credits_charged"] == 1
    assert job_world.services.ledger.balance(job_world.team_id).available_credits == 100 - view["credits_charged"]


def test_result_before_the_job_ran_and_cancel(job_world: ApiWorld) -> None:
    client = job_world.client()  # no consumer: the job stays queued
    created = client.post(
        "/api/v1/enrichment/jobs?max_credits=10", json={"rows": [{"email": "jane.doe@acmecorp.test"}]},
        headers=_auth(job_world),
    )
    job_id = created.get_json()["data"]["id"]
    assert job_world.services.ledger.balance(job_world.team_id).held_credits == 10
    early = client.get(f"/api/v1/enrichment/jobs/{job_id}/result", headers=_auth(job_world))
    assert early.status_code == 409 and early.get_json()["type"].endswith(":job-not-finished")
    cancelled = client.post(f"/api/v1/enrichment/jobs/{job_id}/cancel", headers=_auth(job_world))
    assert cancelled.get_json()["data"]["status"] == "cancelled"
    assert job_world.services.ledger.balance(job_world.team_id).held_credits == 0
    bad = client.post("/api/v1/enrichment/jobs", data="x", headers={**_auth(job_world), "Content-Type": "text/plain"})
    assert bad.status_code == 415
    no_columns = client.post("/api/v1/enrichment/jobs", json={"rows": [{"colour": "red"}]}, headers=_auth(job_world))
    assert no_columns.status_code == 422
    for unknown in (999999, 2**40):  # 2**40: beyond PostgreSQL's INTEGER, still just no job
        assert client.get(f"/api/v1/enrichment/jobs/{unknown}", headers=_auth(job_world)).status_code == 404


class _Receiver:
    """A loopback webhook endpoint: refuses the first delivery (500), then acknowledges."""

    def __init__(self) -> None:
        import http.server

        self.deliveries: list[tuple[str, bytes]] = []
        self.acknowledged = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((self.headers["Tributary-Signature"], body))
                ok = len(receiver.deliveries) > 1
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if ok:
                    receiver.acknowledged.set()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tributary"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_completion_webhook_is_signed_and_retried_until_acknowledged(db_url: str, tmp_path) -> None:
    import hashlib
    import hmac
    import json
    from urllib.parse import quote

    world = make_world(db_url, huey_sqlite_path=str(tmp_path / "huey.db"), api_job_dir=str(tmp_path / "jobs"),
                       api_webhook_backoff_s=0.01, api_webhook_allow_private=True)
    receiver = _Receiver()
    consumer = start_in_process(world.services.job_queue, workers=1, periodic=False)
    try:
        created = world.client().post(
            f"/api/v1/enrichment/jobs?webhook_url={quote(receiver.url)}",
            json={"rows": [{"email": "jane.doe@acmecorp.test"}]}, headers=_auth(world),
        )
        assert created.status_code == 202, created.get_json()
        assert receiver.acknowledged.wait(WAIT_S), "the webhook was not delivered"
    finally:
        consumer.stop()
        receiver.server.shutdown()
    assert len(receiver.deliveries) == 2  # refused once, retried, acknowledged
    signature, body = receiver.deliveries[-1]
    fields = dict(part.split("=", 1) for part in signature.split(","))
    key = hashlib.sha256(world.key.encode()).hexdigest()  # the client derives it from its own key
    expected = hmac.new(key.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    event = json.loads(body)
    assert event["type"] == "enrichment_job.completed" and event["data"]["status"] == "done"
    assert event["data"]["id"] == created.get_json()["data"]["id"] and event["data"]["credits_charged"] == 1
    bad = world.client().post("/api/v1/enrichment/jobs?webhook_url=ftp://x", json={"rows": [{"email": "a@b.c"}]},
                              headers=_auth(world))
    assert bad.status_code == 422 and bad.get_json()["pointer"] == "/webhook_url"
    world.services.engine.dispose()


def test_webhook_urls_to_internal_addresses_are_refused_by_default(db_url: str, tmp_path) -> None:
    """Server-side request forgery: a caller-chosen URL may not reach loopback or private networks."""
    from urllib.parse import quote

    world = make_world(db_url, huey_sqlite_path=str(tmp_path / "huey.db"), api_job_dir=str(tmp_path / "jobs"))
    for url in ("http://127.0.0.1:8080/x", "http://10.0.0.5/x", "http://[::1]/x", "http://localhost/x",
                "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/x"):
        answer = world.client().post(f"/api/v1/enrichment/jobs?webhook_url={quote(url)}",
                                     json={"rows": [{"email": "a@b.c"}]}, headers=_auth(world))
        assert answer.status_code == 422, url
        assert answer.get_json()["pointer"] == "/webhook_url" and "public" in answer.get_json()["detail"], url
    world.services.engine.dispose()


def test_a_name_that_resolves_to_an_internal_address_is_not_delivered_to() -> None:
    """Checked at every attempt, after resolution: a public-looking name pointing inside is refused, not retried."""
    import socket

    from core.api.webhooks import WebhookPolicy, WebhookTargetRefused, deliver, resolve_target

    receiver = _Receiver()
    name = socket.gethostname()  # resolves through /etc/hosts to this machine
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip("this machine's own name does not resolve")
    try:
        with pytest.raises(WebhookTargetRefused, match="non-public|public address"):
            resolve_target(f"http://{name}:{receiver.server.server_address[1]}/hooks", allow_private=False)
        # allowed explicitly, the same name is resolved and reached at its resolved address
        target = resolve_target(f"http://{name}:9/hooks", allow_private=True)
        assert target.address in addresses and target.hostname == name
        policy = WebhookPolicy(max_attempts=5, backoff_s=0.01)
        assert deliver(receiver.url, "00" * 32, {"type": "t"}, policy) is False
        assert receiver.deliveries == []  # refused before any connection, and not retried
        assert deliver(receiver.url, "00" * 32, {"type": "t"}, WebhookPolicy(5, 0.01, allow_private=True))
    finally:
        receiver.server.shutdown()
