"""Issue 12 item 16: the demo does not decay. Its mail world runs on loopback (demo/mailworld.py), so a
demo verification older than the freshness window is re-checked over real DNS and SMTP against it,
not against the internet (where `.test` fails and the demo's emails were written back `invalid`)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from core.verify.config import VerifierConfig
from core.verify.pipeline import EmailVerifier
from demo import mailworld as demo_mail
from demo import world as demo_world
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow


@pytest.fixture(scope="module")
def world() -> demo_mail.DemoMail:
    running = demo_mail.start()
    yield running
    running.stop()


def test_demo_mail_world_answers_like_the_demo_describes(world: demo_mail.DemoMail) -> None:
    config = VerifierConfig(
        dns_nameservers=("127.0.0.1",),
        dns_port=world.dns_port,
        smtp_port=world.smtp_port,
        dns_timeout_s=5.0,
        connect_timeout_s=2.0,
        command_timeout_s=2.0,
        temp_retries=1,
        retry_initial_wait_s=0.01,
        retry_max_wait_s=0.02,
        test_environment=True,
    )
    by_behaviour = {}
    for domain in demo_world.mail_servers():
        if domain.mailboxes:
            by_behaviour.setdefault(domain.behaviour, f"{domain.mailboxes[0]}@{domain.domain}")
    expected = {
        "jane.doe@acme.test": EmailStatus.VERIFIED,
        "nobody@acme.test": EmailStatus.INVALID,
        "ravi@globex.test": EmailStatus.ACCEPT_ALL,
        by_behaviour["normal"]: EmailStatus.VERIFIED,
        by_behaviour["greylist"]: EmailStatus.VERIFIED,  # after the retry
        by_behaviour["null_mx"]: EmailStatus.INVALID,
        by_behaviour["greylist_forever"]: EmailStatus.UNKNOWN,
        "someone@not-in-the-demo.test": EmailStatus.INVALID,  # NXDOMAIN: nothing leaves the demo world
    }
    results = EmailVerifier(config).verify_many_sync(list(expected))
    assert {r.email: r.status for r in results} == expected


@pytest.mark.parametrize("backend", ["sqlite"])  # the demo mail world is for the embedded SQLite demo only
def test_a_stale_demo_email_is_reverified_offline_and_stays_verified(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env["TRIBUTARY_DATABASE_URL"] = db_url

    def tributary(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    tributary("demo", "seed", "--small")
    stale = (utcnow() - timedelta(days=45)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE email_address SET checked_at = ? WHERE address = 'jane.doe@acme.test'", (stale,))
    access = json.loads(tributary("access", "email", "demo", "rep@demo.test", "jane.doe@acme.test", "--json"))
    assert (access["email"]["status"], access["charged_credits"]) == ("verified", 1)
    assert access["email"]["checked_at"][:10] == utcnow().strftime("%Y-%m-%d")  # probed just now
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        [(status,)] = conn.execute("SELECT status FROM email_address WHERE address = 'jane.doe@acme.test'")
    assert status == "verified"
