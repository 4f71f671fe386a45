"""Request bodies are capped app-wide (TRIBUTARY_MAX_BODY_BYTES): a body over the cap gets 413 while
it is being read, chunked bodies (no Content-Length) included, under the development server
(`tributary serve`) and under gunicorn (gunicorn.conf.py). Memory is measured by what it comes from:
the bytes the app read from the request stream before it answered (tests/web_counting.py), not time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from core.services import Services
from core.settings import Settings
from storage.migrate import upgrade
from tests.web_counting import COUNT_HEADER, counting
from web.app import create_app

CAP_BYTES = 64 * 1024
SECRET_KEY = Fernet.generate_key().decode()
ATTACK_BYTES = 64 * 1024 * 1024  # what the client offers: 1,024 times the cap
CHUNK_BYTES = 64 * 1024
ROOT = Path(__file__).resolve().parents[1]
# The app reads in buffers (8 KiB, bolt and Werkzeug alike): it may read that much past the cap.
READ_SLACK_BYTES = 64 * 1024
WEBHOOK_PATH = "/api/v1/events/bounces/demo"  # no such team: the cap comes before any lookup


def _settings(tmp_path: Path) -> Settings:
    upgrade(f"sqlite:///{tmp_path / 'unused.db'}")  # an unknown team is looked up before the body is read
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        max_body_bytes=CAP_BYTES,
        secret_keys=SECRET_KEY,
        slack_signing_secret="signing",
        slack_bot_token="xoxb-test",
        slack_api_url="http://127.0.0.1:9/api/",  # never called: the body is refused first
    )


@contextmanager
def dev_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    app = create_app(Services.from_settings(_settings(tmp_path)))
    app.wsgi_app = counting(app.wsgi_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)  # what `tributary serve` runs (run_simple)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join()


@contextmanager
def gunicorn_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    upgrade(f"sqlite:///{tmp_path / 'unused.db'}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "TRIBUTARY_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "TRIBUTARY_MAX_BODY_BYTES": str(CAP_BYTES),
        "TRIBUTARY_SECRET_KEYS": SECRET_KEY,
        "TRIBUTARY_DEVELOPMENT": "true",  # no production keys for a throwaway server
        "TRIBUTARY_SLACK_SIGNING_SECRET": "signing",
        "TRIBUTARY_SLACK_BOT_TOKEN": "xoxb-test",
        "TRIBUTARY_SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--workers", "1",
         "--bind", f"fd://{listener.fileno()}", "tests.web_counting:counting_app()"],
        cwd=ROOT, env=env, pass_fds=[listener.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    listener.close()  # gunicorn has its own copy; connections queue in the backlog until it accepts
    try:
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


SERVERS = {"dev-server": dev_server, "gunicorn": gunicorn_server}


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed before a response: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return int(lines[0].split()[1]), headers, body


def post(address: tuple[str, int], path: str, total_bytes: int, *, chunked: bool) -> tuple[int, dict, bytes]:
    """POST `total_bytes` of body, stopping as soon as the server answers (as a client would).

    The answer is read on a thread of its own while the body is sent, so it is in hand before the
    server closes the connection on the rest (which may reset it)."""
    sock = socket.create_connection(address, timeout=60)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total_bytes}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()
    )
    answered = threading.Event()
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["response"] = _read_response(sock)
        except (OSError, AssertionError) as exc:
            outcome["error"] = exc
        finally:
            answered.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    payload = b"x" * CHUNK_BYTES
    frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n" if chunked else payload
    sent = 0
    try:
        while sent < total_bytes and not answered.is_set():
            sock.sendall(frame)
            sent += len(payload)
        if chunked and not answered.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed its side after answering
    answered.wait(60)
    sock.close()
    reader.join(60)
    if "error" in outcome:
        raise AssertionError(f"no response: {outcome['error']!r}")
    return outcome["response"]  # type: ignore[return-value]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", [WEBHOOK_PATH, "/slack/events", "/no/such/endpoint"])
def test_an_oversized_chunked_body_is_refused_with_413_having_read_at_most_the_cap(tmp_path, server, path) -> None:
    with SERVERS[server](tmp_path) as address:
        status, headers, body = post(address, path, ATTACK_BYTES, chunked=True)
    if path == "/no/such/endpoint":
        assert status == 404  # nothing reads a body nobody asked for
    else:
        assert status == 413, body
        problem = json.loads(body)
        assert headers["content-type"] == "application/problem+json"
        assert problem["status"] == 413 and problem["title"] == HTTPStatus(413).phrase
    assert int(headers[COUNT_HEADER.lower()]) <= CAP_BYTES + READ_SLACK_BYTES


@pytest.mark.parametrize("server", SERVERS)
def test_a_declared_oversized_body_is_refused_before_anything_is_read(tmp_path, server) -> None:
    with SERVERS[server](tmp_path) as address:
        status, headers, body = post(address, "/slack/events", CAP_BYTES + 1, chunked=False)
    assert status == 413 and json.loads(body)["status"] == 413
    assert int(headers[COUNT_HEADER.lower()]) == 0


def test_a_chunked_body_within_the_cap_reaches_the_endpoint_whole(tmp_path) -> None:
    # Under the cap the webhook reads the body and answers on its merits: a missing signature.
    with dev_server(tmp_path) as address:
        status, headers, body = post(address, WEBHOOK_PATH, CHUNK_BYTES, chunked=True)
    assert status == 401
    assert int(headers[COUNT_HEADER.lower()]) == CHUNK_BYTES


def test_the_webhook_keeps_its_tighter_cap_for_chunked_bodies(tmp_path) -> None:
    settings = _settings(tmp_path).model_copy(update={"max_body_bytes": 8 * 1024 * 1024})
    app = create_app(Services.from_settings(settings))
    app.wsgi_app = counting(app.wsgi_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, _ = post(("127.0.0.1", server.server_port), WEBHOOK_PATH, 4 * 1024 * 1024, chunked=True)
    finally:
        server.shutdown()
        thread.join()
    assert status == 413
    assert int(headers[COUNT_HEADER.lower()]) <= 1024 * 1024 + READ_SLACK_BYTES  # core.bounces.webhook.MAX_BODY_BYTES
