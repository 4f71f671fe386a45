"""Every shell command the README shows runs as written (issue 12 item 18).

Each ```sh block runs with bash (`set -euo pipefail`) in a fresh directory: `.venv` there is the
project's virtualenv, the database is the default `./var/tributary.db`, no TRIBUTARY_* variable is
inherited. What `make run` would have done first is done first (keys, migrate, seed the small demo, serve on
a free port: the README's `localhost:8000` is that port). A block preceded by
`<!-- readme-test: skip (why) -->` is not run (make run serves for ever, make test runs this suite).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
_BLOCK = re.compile(r"(?:<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```sh\n(?P<body>.*?)```", re.S)
SERVE_READY_S = 60.0  # a deadline for the server to accept connections, not a timing assertion


def sh_blocks() -> list[tuple[int, str, str | None]]:
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m["body"], m["why"]) for m in _BLOCK.finditer(text)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], int]]:
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / ".venv").symlink_to(VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    port = _free_port()
    env["TRIBUTARY_WEB_PORT"] = str(port)
    for step in (["secrets", "init"], ["db", "upgrade"], ["demo", "seed", "--small"]):
        subprocess.run([".venv/bin/tributary", *step], cwd=cwd, env=env, check=True, capture_output=True, timeout=300)
    server = subprocess.Popen([".venv/bin/tributary", "serve"], cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port, server)
        yield cwd, env, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_port(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVE_READY_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)  # the server binds after printing; nothing to wait on but the port
    raise AssertionError(f"tributary serve did not listen on {port} (exit code {server.poll()})")


def test_readme_has_runnable_blocks() -> None:
    runnable = [b for b in sh_blocks() if b[2] is None]
    assert len(runnable) >= 2 and all(why for _, _, why in sh_blocks() if why is not None)


@pytest.mark.parametrize(("line", "body", "why"), sh_blocks(), ids=[f"README.md:{b[0]}" for b in sh_blocks()])
def test_readme_block_runs_as_written(workdir, line: int, body: str, why: str | None) -> None:
    if why is not None:
        pytest.skip(f"README.md:{line}: {why}")
    cwd, env, port = workdir
    script = "set -euo pipefail\n" + body.replace("localhost:8000", f"127.0.0.1:{port}")
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"README.md:{line}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    assert "Traceback" not in proc.stderr
