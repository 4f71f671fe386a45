"""A loopback IMAP4rev1 server: pymap (a maintained pure-Python IMAP server) with its in-memory
backend, run as a child process. Messages are delivered into it with IMAP APPEND."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from imap_tools import AND, MailBoxUnencrypted

from tests.mailpeers.relay import free_port

IMAP_USER = "bounces"
IMAP_PASSWORD = "imap-pass"
START_TIMEOUT_S = 20.0


@dataclass
class RunningImap:
    host: str
    port: int
    process: subprocess.Popen

    def mailbox(self) -> MailBoxUnencrypted:
        return MailBoxUnencrypted(self.host, self.port, timeout=10).login(IMAP_USER, IMAP_PASSWORD)

    def deliver(self, raw: bytes) -> None:
        with self.mailbox() as box:
            box.append(raw, "INBOX")

    def empty(self) -> None:
        with self.mailbox() as box:
            uids = box.uids("ALL")
            if uids:
                box.delete(uids)

    def unseen(self) -> int:
        with self.mailbox() as box:
            return len(box.uids(AND(seen=False)))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_imap() -> RunningImap:
    port = free_port()
    pymap = Path(sys.executable).with_name("pymap")
    process = subprocess.Popen(
        [str(pymap), "--host", "127.0.0.1", "--port", str(port), "--no-tls",
         "dict", "--demo-user", IMAP_USER, "--demo-password", IMAP_PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    server = RunningImap("127.0.0.1", port, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with server.mailbox():
                return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("pymap did not start") from None
            time.sleep(0.1)
