"""A loopback HTTP server speaking Hunter's Email Finder v2 (GET /v2/email-finder), scriptable per
request: 200 with a real-shaped body, 404, 429 with Retry-After, 500, slow answers, bad JSON."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic() on arrival
    path: str
    params: dict[str, str]
    client_port: int = 0  # one port across requests = one kept-alive connection
    headers: dict[str, str] = field(default_factory=dict)


def hunter_found(
    email: str, *, status: str | None = "valid", score: int = 91, phone: str | None = None, accept_all: bool = False
) -> Reply:
    local, _, domain = email.partition("@")
    return Reply(
        200,
        {
            "data": {
                "first_name": local.split(".")[0].title(),
                "last_name": local.split(".")[-1].title(),
                "email": email,
                "score": score,
                "domain": domain,
                "accept_all": accept_all,
                "position": None,
                "twitter": None,
                "linkedin_url": None,
                "phone_number": phone,
                "company": domain.split(".")[0].title(),
                "sources": [],
                "verification": {"date": "2026-11-01", "status": status},
            },
            "meta": {"params": {"domain": domain}},
        },
    )


def hunter_not_found() -> Reply:
    return Reply(404, {"errors": [{"id": "email_not_found", "code": 404, "details": "No email found"}]})


class VendorServer:
    def __init__(self, *, keep_alive: bool = False) -> None:
        self.script: deque[Reply] = deque()  # consumed first, one reply per request
        self.default: Callable[[dict[str, str]], Reply] = lambda params: hunter_not_found()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 closes the connection after each reply; HTTP/1.1 keeps it open, as real vendors do.
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                with server._lock:
                    seen = Seen(time.monotonic(), url.path, params, self.client_address[1], dict(self.headers.items()))
                    server.seen.append(seen)
                    reply = server.script.popleft() if server.script else server.default(params)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body
                data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def calls(self) -> int:
        return len(self.seen)

    def __enter__(self) -> VendorServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
