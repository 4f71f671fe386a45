"""A loopback SMTP relay (aiosmtpd) that demands STARTTLS and AUTH LOGIN, with a certificate from a
CA made for the test (trustme). It records what it accepted; it never forwards anything."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

RELAY_USER = "relay-user"
RELAY_PASSWORD = "s3cr3t-relay-pass"


@dataclass
class Accepted:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None
    tls: bool


@dataclass
class RelayRecorder:
    accepted: list[Accepted] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, options):
        if address.lower() in self.refuse_rcpt:
            return "550 5.1.1 relay says no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.accepted.append(
            Accepted(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content),
                     login, session.ssl is not None)
        )
        return "250 2.0.0 queued"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == RELAY_USER
        and auth_data.password.decode() == RELAY_PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningRelay:
    host: str
    port: int
    ca_file: Path
    recorder: RelayRecorder
    controller: Controller


def start_relay(tmp_dir: Path) -> RunningRelay:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_dir / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    recorder = RelayRecorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
        auth_exclude_mechanism=["PLAIN"],  # the client must use AUTH LOGIN
    )
    controller.start()
    return RunningRelay("127.0.0.1", port, ca_file, recorder, controller)
