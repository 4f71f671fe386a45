"""Loopback pieces of the sidebar's browser test: the Apps Script host (Node running the bundled Code.gs
with a real, synchronous UrlFetchApp), the backend app served on a port, and headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

HOST_JS = Path(__file__).with_name("apps_script_host.js")
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; .ci/run installs it (never `playwright install`)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
# The sidebar polls every 3 s in Sheets; the test makes it quicker so progress is seen in a few seconds.
TEST_POLL_MS = 250


def require_browser_tools() -> str:
    """The node binary, or skip saying what is missing (CI installs both)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Apps Script host of the sidebar test needs Node 20+")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium chromium-driver` (.ci/run does)")
    return node


@dataclass
class SheetUser:
    """What Apps Script would know about the user at their sheet: the selection and their tokens
    (camelCase: the host's JSON config names)."""

    spreadsheetId: str
    sheetId: int
    sheetName: str
    rangeA1: str | None
    identityToken: str
    oauthToken: str


class AppsScriptHost:
    """`node apps_script_host.js` on a free loopback port, serving the bundle's Sidebar.html."""

    def __init__(self, node: str, bundle_dir: Path, user: SheetUser, workdir: Path, *, poll_ms: int = TEST_POLL_MS):
        self._node = node
        self._config = {"bundleDir": str(bundle_dir), "pollMs": poll_ms, **asdict(user)}
        self._config_path = workdir / "apps_script_host.json"
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> AppsScriptHost:
        self._config_path.write_text(json.dumps(self._config), encoding="utf-8")
        self._proc = subprocess.Popen(
            [self._node, str(HOST_JS), str(self._config_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        first = self._proc.stdout.readline() if self._proc.stdout else ""
        if not first.startswith("listening "):
            self._proc.kill()
            raise RuntimeError(f"the Apps Script host did not start: {first!r} {self._proc.stderr.read()[-2000:]}")
        self.url = f"http://127.0.0.1:{int(first.split()[1])}/"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        if self._proc.stdin:
            self._proc.stdin.close()  # the host exits when its stdin ends
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def sent(self) -> list[dict[str, Any]]:
        """Every request Code.gs sent to the backend: url, method, headers, body and answer (JSON), status."""
        with urllib.request.urlopen(self.url + "__log", timeout=10) as answer:
            return json.loads(answer.read())

    def configure(self, **changes: Any) -> None:
        """Change the user's state (tokens, selection) as later Apps Script calls will see it."""
        request = urllib.request.Request(
            self.url + "__config", data=json.dumps(changes).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:  # one line per poll would drown the test's output
        pass


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """The app on a free loopback port (threaded, as gunicorn would serve it); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium_page(width: int = 300, height: int = 1400) -> Iterator[Any]:
    """A page of headless Debian Chromium, sidebar-sized (Sheets' sidebar is 300 px wide)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.blocked = []  # anything the page tries to load from outside loopback: refused, listed

            def only_loopback(route: Any) -> None:
                if route.request.url.startswith(("http://127.0.0.1:", "data:", "about:")):
                    route.continue_()
                else:
                    page.blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_loopback)
            yield page
        finally:
            browser.close()
