"""Fixtures for sending/bounce/refund tests: a loopback SMTP relay, a loopback IMAP mailbox, the
recipients' mail servers (a MailNet: DNS + SMTP, for the verifier's re-check of a bounce), and a
Tributary world (services on the test database, a huey queue in the test's directory)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from core.jobs.consumer import start_in_process
from core.jobs.tasks import Jobs
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.services import Services
from core.settings import Settings
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import utcnow
from tests.mailnet import MailNet
from tests.mailpeers.dsn import dsn_for
from tests.mailpeers.imap import IMAP_PASSWORD, IMAP_USER, RunningImap, start_imap
from tests.mailpeers.relay import RELAY_PASSWORD, RELAY_USER, RunningRelay, start_relay

PASSWORD_ENV = "TRIBUTARY_RELAY_PASSWORD_TEST"
VERP_KEY = "verp-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEYS = "xVxSyaiLmID3ugCdbZCZb1jhwXgiJzGnOlbMwko6_B4="
# initech.test: these mailboxes exist, every other address there is refused (a dead mailbox).
LIVE_MAILBOXES = ("kim", "live", "rep")
CATCH_ALL_DOMAIN = "catchall.test"
GREYLIST_DOMAIN = "greylist.test"  # answers every RCPT with 451 (greylisting that never lets go)


@pytest.fixture(scope="module")
def recipients_net() -> Iterator[MailNet]:
    """The recipients' mail servers, which the verifier asks again when a bounce arrives."""
    net = MailNet()
    net.add_domain("initech.test", mailboxes=list(LIVE_MAILBOXES))
    net.add_domain(CATCH_ALL_DOMAIN, mailboxes=["anna"], accept_all=True)
    net.add_domain(GREYLIST_DOMAIN, mailboxes=["gary"], greylist_attempts=MailNet.FOREVER)
    with net:
        yield net


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    running = start_relay(tmp_path_factory.mktemp("relay"))
    yield running
    running.controller.stop()


@pytest.fixture(scope="module")
def imap() -> Iterator[RunningImap]:
    running = start_imap()
    yield running
    running.stop()


@dataclass
class World:
    services: Services
    relay: RunningRelay
    imap: RunningImap | None
    now: datetime

    def accepted(self, message_id: str):
        [found] = [a for a in self.relay.recorder.accepted if message_id.encode() in a.data]
        return found

    def dsn(self, receipt, recipient: str | None = None, **kw) -> bytes:
        """The DSN the recipient's server would send for this send, to its envelope sender."""
        accepted = self.accepted(receipt.message_id)
        return dsn_for(accepted.data, recipient or receipt.recipient, to=accepted.mail_from, **kw)

    def person(self, name: str, email: str | None, *, mobile: str | None = None, domain: str = "initech.test") -> int:
        emails = [NewEmail(email, EmailStatus.VERIFIED, 95, self.now - timedelta(days=1))] if email else []
        phones = [NewPhone(mobile, PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")] if mobile else []
        return add_person(
            self.services.engine,
            NewPerson(full_name=name, company="Initech", domain=domain, emails=emails, phones=phones),
        )

    def team(self, name: str, *, created: datetime) -> str:
        self.services.accounts.create_team(name, plan="free", now=created)
        self.services.accounts.add_member(name, f"rep@{name}.test")
        self.services.relays.set_relay(
            name, host=self.relay.host, port=self.relay.port, username=RELAY_USER, password_env=PASSWORD_ENV,
            starttls=True,
        )
        return f"rep@{name}.test"


def settings_for(
    db_url: str, tmp_path: Path, relay: RunningRelay, imap: RunningImap | None, net: MailNet | None = None, **extra
) -> Settings:
    if net is not None:
        extra = dict(
            verify_dns_nameservers=["127.0.0.1"],
            verify_dns_port=net.dns_port,
            verify_smtp_port=net.smtp_port,
            verify_test_domains=True,
            verify_connect_timeout_s=1.0,
            verify_command_timeout_s=2.0,
            **extra,
        )
    return Settings(
        _env_file=None,
        database_url=db_url,
        huey_sqlite_path=str(tmp_path / "huey.db"),
        # Unique across pytest-xdist workers too (tmp_path.name repeats between workers' temp roots).
        huey_name=f"test-{uuid.uuid4().hex[:12]}",
        smtp_ca_file=str(relay.ca_file),
        bounce_address="bounces@tributary.test",
        bounce_imap_host=imap.host if imap else None,
        bounce_imap_port=imap.port if imap else 993,
        bounce_imap_security="none",
        bounce_imap_user=IMAP_USER,
        bounce_imap_password=SecretStr(IMAP_PASSWORD),
        verp_key=SecretStr(VERP_KEY),
        secret_keys=SecretStr(SECRET_KEYS),
        **extra,
    )


@pytest.fixture
def relay_password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, RELAY_PASSWORD)
    return RELAY_PASSWORD


def make_world(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    relay: RunningRelay,
    imap: RunningImap | None,
    net: MailNet | None = None,
    **extra,
) -> World:
    relay.recorder.accepted.clear()
    relay.recorder.refuse_rcpt.clear()
    if imap is not None:
        imap.empty()
    services = Services(settings=settings_for(db_url, tmp_path, relay, imap, net, **extra), engine=engine)
    return World(services, relay, imap, utcnow())


@pytest.fixture
def running_jobs(request: pytest.FixtureRequest):
    """Start a real consumer (2 worker threads) for a Jobs object; stopped after the test."""
    consumers = []

    def start(jobs: Jobs, workers: int = 2):
        consumer = start_in_process(jobs, workers=workers, periodic=False)
        consumers.append(consumer)
        return consumer

    yield start
    for consumer in consumers:
        consumer.stop(graceful=True)
