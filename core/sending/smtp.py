"""Hand one message to an SMTP relay (smtplib): STARTTLS, login, send.

Port 465 means implicit TLS (SMTPS); any other port speaks plain SMTP and upgrades with STARTTLS
when the relay asks for it. Error messages name the relay, the user and the SMTP code, never the
password, and never echo the server's reply to a failed login (it could quote what we sent).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from core.errors import TributaryError
from core.sending.relays import RelayInfo

log = logging.getLogger(__name__)

IMPLICIT_TLS_PORT = 465


class SendFailed(TributaryError):
    pass


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trust store, plus `ca_file` for relays with a private CA."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def deliver(
    relay: RelayInfo,
    message: EmailMessage,
    *,
    envelope_from: str,
    password: str | None,
    timeout_s: float,
    context: ssl.SSLContext,
) -> None:
    where = f"SMTP relay {relay.host}:{relay.port}"
    try:
        if relay.port == IMPLICIT_TLS_PORT:
            client: smtplib.SMTP = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout_s, context=context)
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=timeout_s)
        with client:
            client.ehlo()
            if relay.starttls and relay.port != IMPLICIT_TLS_PORT:
                client.starttls(context=context)
                client.ehlo()
            if relay.username:
                try:
                    client.login(relay.username, password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    who = f"user {relay.username!r}"
                    raise SendFailed(f"{where} refused the login of {who} ({exc.smtp_code})") from None
            refused = client.send_message(message, from_addr=envelope_from)
            if refused:
                address, (code, text) = next(iter(refused.items()))
                raise SendFailed(f"{where} refused recipient {address}: {code} {_text(text)}")
    except SendFailed:
        raise
    except smtplib.SMTPNotSupportedError as exc:
        raise SendFailed(f"{where}: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        address, (code, text) = next(iter(exc.recipients.items()))
        raise SendFailed(f"{where} refused recipient {address}: {code} {_text(text)}") from None
    except smtplib.SMTPResponseException as exc:
        raise SendFailed(f"{where} refused the message: {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except ssl.SSLError as exc:
        raise SendFailed(f"{where}: TLS failed ({exc.reason or type(exc).__name__})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"{where}: cannot send ({type(exc).__name__}: {exc})") from None
    log.info("sent %s via %s:%s", message["Message-ID"], relay.host, relay.port)


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:300]


__all__ = ["SendFailed", "deliver", "tls_context"]
