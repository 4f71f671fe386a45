"""A Slack Web API on loopback: the methods the bot calls, every call recorded, errors on demand.

- `POST|GET /api/<method>` answers like Slack (HTTP 200 with {"ok": ...}); the bearer token, the
  parameters (form, query or JSON) and the order of calls are recorded.
- `POST /response/<key>` is a response_url: what the app sends there is recorded too.
- `POST /upload/<file id>` receives file bytes (files.getUploadURLExternal hands out these URLs).
- `script(method, Reply(...), ...)` queues answers for a method: an error (`ok: false`), an HTTP
  500, a 429 with Retry-After; once the queue is empty the method answers normally again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class Reply:
    status: int = 200
    error: str | None = None  # an `ok: false` answer with this error
    retry_after_s: int | None = None
    body: dict | None = None


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    status: int  # what the server answered
    headers: dict[str, str] = field(default_factory=dict)
    received_monotonic_s: float = field(default_factory=time.monotonic)  # benchmarks time answers by it


class SlackApiServer:
    def __init__(self, *, team_id: str = "T1", bot_user_id: str = "UBOT") -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.emails: dict[str, str] = {}  # Slack user id -> profile email
        self.unconfirmed: set[str] = set()  # users whose profile email Slack has not confirmed
        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ids = count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SlackApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.base_url}/response/{key}"

    # ---- scripting and inspection ---------------------------------------------------------

    def script(self, method: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[method].extend(replies)

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)]

    def wait_for(self, predicate, *, timeout_s: float = 15.0, what: str = "calls") -> list[Call]:
        """Wait until predicate(calls) is truthy; fail with the calls seen so far if it never is."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                if predicate(list(self.calls)):
                    return list(self.calls)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; calls: {[c.method for c in self.calls]}")
                self._changed.wait(remaining)

    def wait_calls(self, method: str, n: int = 1, *, timeout_s: float = 15.0) -> list[Call]:
        self.wait_for(lambda calls: sum(c.method == method for c in calls) >= n, timeout_s=timeout_s, what=method)
        return self.calls_to(method)

    # ---- the Web API -----------------------------------------------------------------------

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict, dict[str, str]]:
        with self._lock:
            scripted = self._scripts[method].popleft() if self._scripts.get(method) else None
        if scripted is not None and (scripted.status != 200 or scripted.error or scripted.body):
            headers = {"Retry-After": str(scripted.retry_after_s)} if scripted.retry_after_s is not None else {}
            if scripted.status != 200:
                return scripted.status, {"ok": False, "error": scripted.error or "internal_error"}, headers
            if scripted.error:
                return 200, {"ok": False, "error": scripted.error}, headers
            return 200, scripted.body, headers
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(params), {}

    def _m_auth_test(self, p: dict) -> dict:
        return {
            "ok": True,
            "url": "https://tributary-test.slack.com/",
            "team": "Test",
            "team_id": self.team_id,
            "user": "tributary",
            "user_id": self.bot_user_id,
            "bot_id": "BBOT",
            "is_enterprise_install": False,
        }

    def _m_users_info(self, p: dict) -> dict:
        user = p.get("user")
        if user not in self.emails:
            return {"ok": False, "error": "user_not_found"}
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": self.team_id,
                "is_email_confirmed": user not in self.unconfirmed,
                "profile": {"email": self.emails[user]},
            },
        }

    def _m_users_lookupByEmail(self, p: dict) -> dict:
        for user, email in self.emails.items():
            if email == p.get("email"):
                return {"ok": True, "user": {"id": user, "profile": {"email": email}}}
        return {"ok": False, "error": "users_not_found"}

    def _m_conversations_open(self, p: dict) -> dict:
        return {"ok": True, "channel": {"id": "D" + str(p.get("users", "")).lstrip("U")}}

    def _m_chat_postMessage(self, p: dict) -> dict:
        return {"ok": True, "channel": p.get("channel"), "ts": f"{time.time():.6f}", "message": {"text": p.get("text")}}

    def _m_chat_update(self, p: dict) -> dict:
        return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}

    def _m_views_publish(self, p: dict) -> dict:
        return {"ok": True, "view": {"id": "V1", "type": "home"}}

    def _m_oauth_v2_access(self, p: dict) -> dict:
        return {
            "ok": True,
            "app_id": "A1",
            "authed_user": {"id": "UINSTALLER"},
            "scope": "commands,chat:write,im:write,users:read,users:read.email,files:write",
            "token_type": "bot",
            "access_token": f"xoxb-installed-{p.get('code')}",
            "bot_user_id": self.bot_user_id,
            "team": {"id": self.team_id, "name": "Test"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _m_files_getUploadURLExternal(self, p: dict) -> dict:
        file_id = f"F{next(self._ids)}"
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict) -> dict:
        files = p.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _m_files_info(self, p: dict) -> dict:
        return {"ok": True, "file": {"id": p.get("file")}}

    # ---- HTTP ------------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _params(self) -> dict[str, Any]:
                url = urlparse(self.path)
                params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                self._raw = raw
                kind = self.headers.get("Content-Type", "")
                if raw and kind.startswith("application/json"):
                    params.update(json.loads(raw))
                elif raw and kind.startswith("application/x-www-form-urlencoded"):
                    params.update({k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()})
                return params

            def _send(self, status: int, body: dict | str, headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _dispatch(self) -> None:
                path = urlparse(self.path).path
                params = self._params()
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
                if path.startswith("/api/"):
                    method = path.removeprefix("/api/")
                    status, body, headers = server._answer(method, params)
                    server._record(Call(method, params, token, status, dict(self.headers)))
                    self._send(status, body, headers)
                elif path.startswith("/response/"):
                    server._record(Call("response_url", {**params, "_key": path.rsplit("/", 1)[1]}, token, 200))
                    self._send(200, "ok")
                elif path.startswith("/upload/"):
                    file_id = path.rsplit("/", 1)[1]
                    server.uploads[file_id] = self._raw
                    server._record(Call("upload", {"file_id": file_id, "size": len(self._raw)}, token, 200))
                    self._send(200, "OK - " + str(len(self._raw)))
                else:
                    self._send(404, {"ok": False, "error": "not_found"})

            do_GET = _dispatch
            do_POST = _dispatch

        return Handler
