"""Delivery status notifications (RFC 3464) for messages the test relay accepted."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default
from email.utils import format_datetime, make_msgid

from storage.timeutil import utcnow


def dsn_for(original: bytes, recipient: str, *, status: str = "5.1.1", bounce_message_id: str | None = None,
            diagnostic: str = "550 5.1.1 The email account that you tried to reach does not exist",
            to: str = "bounces@tributary.test") -> bytes:
    """A Postfix-style DSN for `original` (as the relay accepted it), returning its headers, addressed
    to `to`: the original's envelope sender, as an MTA addresses it."""
    headers = BytesParser(policy=default).parsebytes(original, headersonly=True)
    returned = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    action = "failed" if status.startswith("5") else "delayed"
    bounce_id = bounce_message_id or make_msgid(domain="mx.example.test")
    return (
        f"From: MAILER-DAEMON@mx.example.test\r\nTo: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(utcnow())}\r\nMessage-ID: {bounce_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN-BOUNDARY"\r\n\r\n'
        "--DSN-BOUNDARY\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.example.test. Your message could not be delivered.\r\n"
        "--DSN-BOUNDARY\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        "--DSN-BOUNDARY\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{returned}\r\n--DSN-BOUNDARY--\r\n"
    ).encode()


def dsn_without_recipient() -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.test\r\nTo: bounces@tributary.test\r\n"
        b"Subject: Delivery Status Notification\r\n"
        b"Message-ID: <norcpt@mx.example.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n"
    )


MALFORMED_MIME = (
    b"From: MAILER-DAEMON@mx.example.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="NEVER-CLOSED"\r\n\r\n'
    b"garbage without any boundary line \x00\xff\xfe\r\n"
)
