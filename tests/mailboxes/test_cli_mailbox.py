"""`tributary mailbox ...` end to end (a subprocess per command) against the loopback IMAP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.mailboxes import corpus as gen
from tests.mailboxes.helpers import SECRET_KEYS, deliver_all
from tests.mailpeers.imap import IMAP_PASSWORD, IMAP_USER, start_imap


@pytest.fixture
def tributary(db_url, tmp_path):
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url, "TRIBUTARY_SECRET_KEYS": SECRET_KEYS,
           "TRIBUTARY_MAILBOX_MX_LOOKUPS_PER_SYNC": "0", "MAILBOX_PW": IMAP_PASSWORD,
           "WRONG_PW": "no-such-password"}

    def run(*args, code=0):
        proc = subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == code, proc.stderr
        return proc

    return run


def test_connect_sync_private_status_disconnect(tributary) -> None:
    imap = start_imap()
    try:
        imap.empty()
        deliver_all(imap, gen.build(seed=5, size=12).messages)
        tributary("teams", "create", "acme")
        tributary("members", "add", "acme", "rep@ourteam.test")
        bad = tributary("mailbox", "connect", "acme", "rep@ourteam.test", "--host", "imap.example.com", "--user", "u",
                        "--password-env", "MAILBOX_PW", "--plain-loopback", code=2)
        assert "loopback" in bad.stderr and "Traceback" not in bad.stderr
        server = ("--host", imap.host, "--port", str(imap.port), "--user", IMAP_USER, "--plain-loopback")
        refused = tributary("mailbox", "connect", "acme", "rep@ourteam.test", *server, "--password-env", "WRONG_PW",
                            code=1)
        assert "login refused" in refused.stderr and "no-such-password" not in refused.stderr
        assert "no mailbox connected" in tributary("mailbox", "status", "acme").stdout
        tributary("mailbox", "connect", "acme", "rep@ourteam.test", *server, "--password-env", "MAILBOX_PW")
        assert "private: secretclient.test" in tributary(
            "mailbox", "private", "acme", "rep@ourteam.test", "add", "https://www.SecretClient.test/x").stdout
        synced = json.loads(tributary("mailbox", "sync", "acme", "rep@ourteam.test", "--json").stdout)
        assert synced["messages"] == 12 and synced["candidates"] > 0 and synced["skipped_private"] == 1
        status = tributary("mailbox", "status", "acme").stdout
        assert "12 messages read" in status and IMAP_PASSWORD not in status
        assert "disconnected:" in tributary("mailbox", "disconnect", "acme", "rep@ourteam.test").stdout
        assert "no mailbox connected" in tributary("mailbox", "status", "acme").stdout
        assert "has no connected mailbox" in tributary("mailbox", "sync", "acme", "rep@ourteam.test", code=2).stderr
    finally:
        imap.stop()
