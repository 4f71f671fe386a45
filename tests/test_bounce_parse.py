"""Bounce parsing: the real-world corpus (flufl.bounce's test data), synthetic DSNs in the styles of
the servers that send most bounces, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from cli import bounces as bounces_cli
from cli import errors as cli_errors
from core.bounces import parse as parse_module
from core.bounces.parse import (
    BounceClass,
    BounceParseError,
    BounceReport,
    classify,
    parse_bounce,
)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "bounces"
SHARED_CORPUS = REPO.parent / "shared" / "corpora" / "bounces"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())

# Where Tributary's rules deliberately differ from the manifest (which follows flufl.bounce's
# permanent/temporary split): these addresses are soft, not permanent. Every other address in the
# corpus must come out with exactly the manifest's class.
SOFT_BY_RULE: dict[str, dict[str, str]] = {
    # A full mailbox is soft (issue 5: "soft (4.x.x, full mailbox)").
    "dsn_01.txt": {"userx@example.com": "Status 5.0.0 (recipient reached disk quota)"},
    "newmailru_01.txt": {"zzzzz@newmail.ru": "account is exceeding their quota"},
    "postfix_04.txt": {"userx@mail1.example.com": "Mail quota exceeded"},
    "qmail_06.txt": {"ntl@xxx.com": "User's Disk Quota Exceeded"},
    "simple_07.txt": {"userx@example.net": "User's mailbox is full"},
    "simple_09.txt": {"userx@example.de": "quota exceeded"},
    "simple_14.txt": {"userx@example.com": "552 Quota violation"},
    "simple_38.txt": {"userx@example.com": "Quota exceeded"},
    "simple_45.txt": {"subscriber@earthlink.net": "User account is overquota"},
    "yahoo_02.txt": {"userx@example.es": "This account is over quota"},
    "yahoo_04.txt": {"userx@example.es": "over quota", "usery@example.uk": "over quota"},
    # A 4.x.x status is soft even when the MTA gave up: the host was unreachable, which says
    # nothing against the mailbox.
    "dsn_02.txt": {"zzzzz@example.uk": "Action failed, Status 4.4.7 (delivery time expired)"},
    "yahoo_01.txt": {"userx@example.com": "could not connect (#4.4.1), queue lifetime exceeded"},
}


def corpus_ids() -> list[str]:
    return [entry["file"] for entry in MANIFEST]


def test_manifest_covers_every_corpus_file() -> None:
    files = {p.name for p in CORPUS.glob("*.txt")}
    assert files == set(corpus_ids())
    assert len(files) == 95


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared/corpora/bounces not checked out beside the repo")
def test_copy_matches_shared_corpus() -> None:
    for entry in MANIFEST:
        assert (CORPUS / entry["file"]).read_bytes() == (SHARED_CORPUS / entry["file"]).read_bytes(), entry["file"]
    assert json.loads((SHARED_CORPUS / "manifest.json").read_text()) == MANIFEST


@pytest.mark.parametrize("entry", MANIFEST, ids=corpus_ids())
def test_corpus_file(entry: dict[str, object]) -> None:
    name = str(entry["file"])
    permanent = {str(a).lower() for a in entry["permanent"]}  # type: ignore[attr-defined]
    temporary = {str(a).lower() for a in entry["temporary"]}  # type: ignore[attr-defined]
    overrides = SOFT_BY_RULE.get(name, {})
    assert set(overrides) <= permanent | temporary
    expected = {a: BounceClass.SOFT if a in overrides else BounceClass.HARD for a in permanent}
    expected |= {a: BounceClass.SOFT for a in temporary}

    report = parse_bounce((CORPUS / name).read_bytes())

    assert {r.address: r.bounce_class for r in report.recipients} == expected
    assert len(report.recipients) == len(expected)  # one entry per address
    if expected:
        assert report.format == ("dsn" if entry["format"] == ["dsn"] else "non_standard")
        assert report.reason is None
    else:
        assert report.format == "none"
        assert report.reason  # an empty result always says why
    for r in report.recipients:
        if r.address in overrides:
            assert r.bounce_class is BounceClass.SOFT


def test_corpus_totals() -> None:
    reports = {e["file"]: parse_bounce((CORPUS / e["file"]).read_bytes()) for e in MANIFEST}
    assert sum(len(r.recipients) for r in reports.values()) == sum(
        len(e["permanent"]) + len(e["temporary"]) for e in MANIFEST
    )
    assert sum(1 for r in reports.values() if r.format == "dsn") == 13


def test_corpus_details_of_standard_dsns() -> None:
    dsn_01 = parse_bounce((CORPUS / "dsn_01.txt").read_bytes())
    (r,) = dsn_01.recipients
    # Original-Recipient is what was sent to; Final-Recipient is after the server's aliasing.
    assert (r.address, r.original_recipient, r.final_recipient) == (
        "userx@example.com",
        "userx@example.com",
        "userx@sims-ms-daemon",
    )
    assert (r.status, r.reason, r.action, r.diagnostic) == (
        "5.0.0",
        "full_inbox",
        "failed",
        "recipient reached disk quota",
    )
    assert dsn_01.message_id == "<F1218V8zDv60gxapzha000001ae@hotmail.com>"
    assert dsn_01.message_id_source == "message/rfc822"

    dsn_14 = parse_bounce((CORPUS / "dsn_14.txt").read_bytes())
    assert [(r.address, r.status, r.reason, r.diagnostic) for r in dsn_14.recipients] == [
        ("userx@example.com.dk", "5.1.1", "mailbox_not_found", "550 5.1.1 User unknown")
    ]

    dsn_17 = parse_bounce((CORPUS / "dsn_17.txt").read_bytes())
    assert dsn_17.message_id_source == "text/rfc822-headers"
    assert dsn_17.message_id == "<mailman.150418.1209869464.31038.pray4-team@strategicnetwork.org>"


def test_corpus_non_standard_details() -> None:
    exim = parse_bounce((CORPUS / "exim_01.txt").read_bytes())
    assert [(r.address, r.status, r.reason) for r in exim.recipients] == [
        ("userx@its.example.nl", "5.1.1", "mailbox_not_found")
    ]
    assert (exim.message_id, exim.message_id_source) == ("<19990920022322.A19735@stereo.rotzorg.org>", "quoted text")

    yahoo = parse_bounce((CORPUS / "yahoo_01.txt").read_bytes())
    assert [(r.address, r.bounce_class, r.status) for r in yahoo.recipients] == [
        ("userx@example.com", BounceClass.SOFT, "4.4.1")
    ]

    unattributed = parse_bounce((CORPUS / "simple_43.txt").read_bytes())
    assert unattributed.recipients == ()
    assert unattributed.reason == "looks like a bounce but names no failed recipient that can be read"
    # Still matchable to the send by the returned message's Message-ID.
    assert unattributed.message_id == "<ea184277-2081-cdae-1478-0639bb427e8c@our-domain.de>"

    auto_reply = parse_bounce((CORPUS / "qmail_08.txt").read_bytes())
    assert (auto_reply.recipients, auto_reply.reason) == ((), "not a bounce: no failed recipient found")


# --- synthetic DSNs --------------------------------------------------------------------------------

ORIGINAL = b"""\
From: Rep <rep@tributary.example>
To: Jane Doe <Jane.Doe@Example.COM>
Subject: Quick question
Date: Mon, 03 Jun 2024 10:00:00 +0000
Message-ID: <send-42.1717408800@tributary.example>

Hello Jane.
"""

POSTFIX_HARD = (
    b"""\
Return-Path: <>
From: MAILER-DAEMON@mail.tributary.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: rep@tributary.example
Message-Id: <20240603100002.4F1C2@mail.tributary.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F1C2.1717408802/mail.tributary.example"

This is a MIME-encapsulated message.

--4F1C2.1717408802/mail.tributary.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<jane.doe@example.com>: host mx.example.com[192.0.2.10] said: 550 5.1.1
    <jane.doe@example.com>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4F1C2.1717408802/mail.tributary.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.tributary.example
X-Postfix-Queue-ID: 4F1C2
X-Postfix-Sender: rfc822; rep@tributary.example
Arrival-Date: Mon,  3 Jun 2024 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; Jane.Doe@Example.COM
Original-Recipient: rfc822;Jane.Doe@Example.COM
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <jane.doe@example.com>: Recipient address
    rejected: User unknown in virtual mailbox table

--4F1C2.1717408802/mail.tributary.example
Content-Description: Undelivered Message
Content-Type: message/rfc822

"""
    + ORIGINAL
    + b"""
--4F1C2.1717408802/mail.tributary.example--
"""
)

POSTFIX_SOFT_DELAYED = b"""\
From: MAILER-DAEMON@mail.tributary.example (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: rep@tributary.example
Message-Id: <20240603140000.77AA1@mail.tributary.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="77AA1.1717423200/b"

--77AA1.1717423200/b
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.tributary.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

<full@example.org>: host mx.example.org[192.0.2.20] said: 452 4.2.2 Mailbox full

--77AA1.1717423200/b
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.tributary.example
Arrival-Date: Mon,  3 Jun 2024 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; full@example.org
Original-Recipient: rfc822;full@example.org
Action: delayed
Status: 4.2.2
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
Will-Retry-Until: Mon, 8 Jun 2024 10:00:00 +0000 (UTC)

--77AA1.1717423200/b
Content-Type: text/rfc822-headers

From: Rep <rep@tributary.example>
To: full@example.org
Subject: Follow-up
Message-ID: <send-43.1717408800@tributary.example>

--77AA1.1717423200/b--
"""

FAILED_FULL_MAILBOX = (
    POSTFIX_SOFT_DELAYED.replace(b"Action: delayed", b"Action: failed")
    .replace(b"4.2.2", b"5.2.2")
    .replace(b"452 ", b"552 ")
)

GMAIL = b"""\
Delivered-To: rep@tributary.example
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: rep@tributary.example
Subject: Delivery Status Notification (Failure)
References: <send-44.1717408800@tributary.example>
In-Reply-To: <send-44.1717408800@tributary.example>
Message-ID: <665d9a1c.050a0220.1b2c3.0001.GMR@mx.google.com>
Date: Mon, 03 Jun 2024 03:00:12 -0700 (PDT)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3d4e5f60718"; report-type=delivery-status

--000000000000a1b2c3d4e5f60718
Content-Type: multipart/related; boundary="000000000000a1b2c3d4e5f60719"

--000000000000a1b2c3d4e5f60719
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6071a"

--000000000000a1b2c3d4e5f6071a
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to nobody.here@gmail.com because the address couldn't be found,
or is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response was:

The email account that you tried to reach does not exist. Please try double-checking the
recipient's email address for typos or unnecessary spaces. For more information, go to
https://support.google.com/mail/?p=NoSuchUser

--000000000000a1b2c3d4e5f6071a
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not found</h2>
<p>Your message wasn't delivered to <a>nobody.here@gmail.com</a>.</p></body></html>

--000000000000a1b2c3d4e5f6071a--

--000000000000a1b2c3d4e5f60719--

--000000000000a1b2c3d4e5f60718
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; rep@tributary.example
Arrival-Date: Mon, 03 Jun 2024 03:00:11 -0700 (PDT)
X-Original-Message-ID: <send-44.1717408800@tributary.example>

Final-Recipient: rfc822; nobody.here@gmail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1a, the server
 for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does
 not exist. Please try 550-5.1.1 double-checking the recipient's email address
 for typos or 550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1
  https://support.google.com/mail/?p=NoSuchUser a1-20020a05.1 - gsmtp
Last-Attempt-Date: Mon, 03 Jun 2024 03:00:12 -0700 (PDT)

--000000000000a1b2c3d4e5f60718
Content-Type: message/rfc822

From: Rep <rep@tributary.example>
To: nobody.here@gmail.com
Subject: Intro
Message-ID: <send-44.1717408800@tributary.example>

Hi.

--000000000000a1b2c3d4e5f60718--
"""

OFFICE365 = b"""\
From: postmaster@contoso.onmicrosoft.com
To: <rep@tributary.example>
Date: Mon, 3 Jun 2024 10:00:05 +0000
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="e2b1c1f4-9a55-4c2c-8f3a-0d8f1d2a7b6e"
Content-Language: en-US
Message-ID: <1a2b3c4d-0000-4000-8000-aaaaaaaaaaaa@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
In-Reply-To: <send-45.1717408800@tributary.example>
References: <send-45.1717408800@tributary.example>
Subject: Undeliverable: Pricing for Contoso
Auto-Submitted: auto-replied
MIME-Version: 1.0

--e2b1c1f4-9a55-4c2c-8f3a-0d8f1d2a7b6e
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="b5b4a0a6-1a0e-4bd6-9a7e-2c1b0e6f1d33"

--b5b4a0a6-1a0e-4bd6-9a7e-2c1b0e6f1d33
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to Alex.Wilber@Contoso.com couldn't be delivered.
Alex.Wilber wasn't found at contoso.com.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient=
 not found by SMTP address lookup'

--b5b4a0a6-1a0e-4bd6-9a7e-2c1b0e6f1d33
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to Alex.Wilber@Contoso.com couldn't be delivered.</p></body></html>

--b5b4a0a6-1a0e-4bd6-9a7e-2c1b0e6f1d33--

--e2b1c1f4-9a55-4c2c-8f3a-0d8f1d2a7b6e
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;mail.tributary.example
Arrival-Date: Mon, 3 Jun 2024 10:00:04 +0000

Original-Recipient: rfc822;Alex.Wilber@Contoso.com
Final-Recipient: rfc822;Alex.Wilber@Contoso.com
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
 found by SMTP address lookup

--e2b1c1f4-9a55-4c2c-8f3a-0d8f1d2a7b6e
Content-Type: message/rfc822

From: Rep <rep@tributary.example>
To: "Wilber, Alex" <Alex.Wilber@Contoso.com>
Subject: Pricing for Contoso
Message-ID: <send-45.1717408800@tributary.example>

Hi Alex.

--e2b1c1f4-9a55-4c2c-8f3a-0d8f1d2a7b6e--
"""

EXIM_TEXT = b"""\
Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.tributary.example>
To: rep@tributary.example
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1sE0aB-0003Xy-7Q@mx.tributary.example>
X-Failed-Recipients: gone@example.net
Auto-Submitted: auto-replied
Date: Mon, 03 Jun 2024 10:00:03 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.net
    host mx.example.net [192.0.2.30]
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    550 5.2.1 The email account that you tried to reach is disabled

------ This is a copy of the message, including all the headers. ------

Return-path: <rep@tributary.example>
Received: from rep by mx.tributary.example with local (Exim 4.97)
\t(envelope-from <rep@tributary.example>)
\tid 1sE0aA-0003Xw-6P
\tfor gone@example.net; Mon, 03 Jun 2024 10:00:02 +0000
From: Rep <rep@tributary.example>
To: gone@example.net
Subject: Checking in
Message-Id: <send-46.1717408800@tributary.example>
Date: Mon, 03 Jun 2024 10:00:02 +0000

Hi.
"""


def dsn(per_recipient: str, per_message: str = "Reporting-MTA: dns; mail.tributary.example\n") -> bytes:
    """A minimal RFC 3464 report around the given field blocks."""
    return (
        "From: MAILER-DAEMON@mail.tributary.example\n"
        "To: rep@tributary.example\n"
        "Subject: Delivery Status Notification\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b0"\n'
        "\n--b0\nContent-Type: text/plain\n\nDelivery report.\n"
        f"\n--b0\nContent-Type: message/delivery-status\n\n{per_message}\n{per_recipient}\n--b0--\n"
    ).encode()


def test_postfix_hard_5_1_1_with_message_id_recovery() -> None:
    report = parse_bounce(POSTFIX_HARD)

    (r,) = report.recipients
    assert (r.address, r.bounce_class, r.status, r.reason, r.action) == (
        "jane.doe@example.com",
        BounceClass.HARD,
        "5.1.1",
        "mailbox_not_found",
        "failed",
    )
    assert r.diagnostic == (
        "550 5.1.1 <jane.doe@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert (r.original_recipient, r.final_recipient, r.remote_mta) == (
        "jane.doe@example.com",
        "jane.doe@example.com",
        "mx.example.com",
    )
    assert report.format == "dsn"
    assert (report.message_id, report.message_id_source) == ("<send-42.1717408800@tributary.example>", "message/rfc822")
    assert report.original_to == ("jane.doe@example.com",)
    assert report.bounce_message_id == "<20240603100002.4F1C2@mail.tributary.example>"
    assert report.reporting_mta == "mail.tributary.example"
    assert report.defects == ()
    assert report.hard == report.recipients and report.soft == ()


def test_postfix_soft_4_2_2_delay_with_rfc822_headers() -> None:
    report = parse_bounce(POSTFIX_SOFT_DELAYED)

    assert [(r.address, r.bounce_class, r.status, r.reason, r.action) for r in report.recipients] == [
        ("full@example.org", BounceClass.SOFT, "4.2.2", "full_inbox", "delayed")
    ]
    assert (report.message_id, report.message_id_source) == (
        "<send-43.1717408800@tributary.example>",
        "text/rfc822-headers",
    )


def test_failed_5_2_2_full_mailbox_is_soft() -> None:
    report = parse_bounce(FAILED_FULL_MAILBOX)

    assert [(r.address, r.bounce_class, r.status, r.reason, r.action) for r in report.recipients] == [
        ("full@example.org", BounceClass.SOFT, "5.2.2", "full_inbox", "failed")
    ]


def test_gmail_style() -> None:
    report = parse_bounce(GMAIL)

    (r,) = report.recipients
    assert (r.address, r.bounce_class, r.status, r.reason) == (
        "nobody.here@gmail.com",
        BounceClass.HARD,
        "5.1.1",
        "mailbox_not_found",
    )
    assert r.diagnostic is not None and r.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")
    assert r.remote_mta == "gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1a, the server for the domain gmail.com.)"
    assert (report.message_id, report.message_id_source) == ("<send-44.1717408800@tributary.example>", "message/rfc822")
    assert report.reporting_mta == "googlemail.com"


def test_office365_style() -> None:
    report = parse_bounce(OFFICE365)

    (r,) = report.recipients
    # 5.1.10 from Exchange Online means "recipient not found", not RFC 7505's null MX.
    assert (r.address, r.bounce_class, r.status, r.reason) == (
        "alex.wilber@contoso.com",
        BounceClass.HARD,
        "5.1.10",
        "mailbox_not_found",
    )
    assert r.diagnostic == "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    assert report.message_id == "<send-45.1717408800@tributary.example>"
    assert report.original_to == ("alex.wilber@contoso.com",)


def test_exim_plain_text_with_quoted_original() -> None:
    report = parse_bounce(EXIM_TEXT)

    (r,) = report.recipients
    assert (r.address, r.bounce_class, r.status, r.reason, r.action) == (
        "gone@example.net",
        BounceClass.HARD,
        "5.2.1",
        "disabled",
        None,
    )
    assert report.format == "non_standard"
    assert (report.message_id, report.message_id_source) == ("<send-46.1717408800@tributary.example>", "quoted text")
    assert report.bounce_message_id == "<E1sE0aB-0003Xy-7Q@mx.tributary.example>"


def test_mixed_report_keeps_failures_only() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.1\n\n"
        "Final-Recipient: rfc822; c@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; d@example.com\nAction: failed\n\n"
        "Final-Recipient: rfc822; e@example.com\nAction: failed\nStatus: 5.7.1\n"
        "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; client host blocked using a DNSBL\n"
    )

    report = parse_bounce(raw)

    assert [(r.address, r.bounce_class, r.status, r.reason) for r in report.recipients] == [
        ("a@example.com", BounceClass.HARD, "5.1.1", "mailbox_not_found"),
        ("b@example.com", BounceClass.SOFT, "4.4.1", "routing"),
        ("d@example.com", BounceClass.HARD, None, None),
        ("e@example.com", BounceClass.HARD, "5.7.1", "blocked"),
    ]


def test_delay_then_failure_for_one_address_is_one_hard_entry() -> None:
    raw = dsn(
        "Final-Recipient: rfc822; a@example.com\nAction: delayed\nStatus: 4.4.1\n\n"
        "Final-Recipient: rfc822; A@Example.com\nAction: failed\nStatus: 5.1.1\n"
    )

    assert [(r.address, r.bounce_class) for r in parse_bounce(raw).recipients] == [("a@example.com", BounceClass.HARD)]


def test_success_report_is_empty_with_reason() -> None:
    report = parse_bounce(dsn("Final-Recipient: rfc822; a@example.com\nAction: delivered\nStatus: 2.0.0\n"))

    assert report.recipients == ()
    assert report.reason == "delivery status notification reports no failure (delivered, relayed or expanded)"


@pytest.mark.parametrize(
    ("action", "status", "reason", "expected"),
    [
        ("failed", "5.1.1", "mailbox_not_found", BounceClass.HARD),
        ("failed", "5.2.1", "disabled", BounceClass.HARD),
        ("failed", "5.2.2", "full_inbox", BounceClass.SOFT),
        ("failed", "4.4.7", "timeout", BounceClass.SOFT),
        ("failed", None, None, BounceClass.HARD),
        ("error", None, None, BounceClass.HARD),
        ("delayed", "5.1.1", None, BounceClass.SOFT),
        ("delayed", None, None, BounceClass.SOFT),
        (None, "5.1.1", None, BounceClass.HARD),
        (None, "4.2.0", None, BounceClass.SOFT),
        ("delivered", "2.0.0", None, None),
        ("relayed", None, None, None),
        (None, None, None, None),
    ],
)
def test_classify(action: str | None, status: str | None, reason: str | None, expected: BounceClass | None) -> None:
    assert classify(action, status, reason) is expected


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n ", "empty"),
        ("From: a@b\n\nhi", "not_bytes"),
        (None, "not_bytes"),
        (b"\x00\x01\x02\xff\xfe binary garbage \x00", "not_an_email"),
        (b"just some words, no header fields at all\n", "not_an_email"),
    ],
)
def test_unreadable_input(raw: object, code: str) -> None:
    with pytest.raises(BounceParseError) as caught:
        parse_bounce(raw)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert str(caught.value)


def test_malformed_mime_is_a_clear_error() -> None:
    raw = (
        b"From: someone@example.com\nTo: rep@tributary.example\nSubject: hello\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="missing"\n\n'
        b"The boundary never appears.\nNothing here reads as a notice.\n"
    )

    with pytest.raises(BounceParseError) as caught:
        parse_bounce(raw)

    assert caught.value.code == "malformed_mime"
    assert "StartBoundaryNotFoundDefect" in str(caught.value)


def test_truncated_dsn_still_yields_its_recipient_and_reports_the_defect() -> None:
    truncated = POSTFIX_HARD[: POSTFIX_HARD.index(b"Content-Description: Undelivered Message")]

    report = parse_bounce(truncated)

    assert [(r.address, r.bounce_class) for r in report.recipients] == [("jane.doe@example.com", BounceClass.HARD)]
    assert "CloseBoundaryNotFoundDefect" in report.defects


def test_dsn_without_recipient_block() -> None:
    with pytest.raises(BounceParseError) as caught:
        parse_bounce(dsn(""))
    assert caught.value.code == "dsn_without_recipients"
    assert str(caught.value) == "delivery status notification names no recipient"


def test_dsn_recipient_block_without_address() -> None:
    with pytest.raises(BounceParseError) as caught:
        parse_bounce(dsn("Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 unknown\n"))
    assert caught.value.code == "dsn_without_recipients"
    assert "1 recipient block(s) without an address" in str(caught.value)


def test_plain_message_is_not_a_bounce() -> None:
    report = parse_bounce(ORIGINAL)

    assert report.recipients == ()
    assert report.format == "none"
    assert report.reason == "not a bounce: no failed recipient found"


def test_a_failing_detector_does_not_lose_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_msg: object) -> object:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(parse_module, "all_failures", broken)

    # The RFC 3464 reader does not need the detectors...
    assert [r.address for r in parse_bounce(POSTFIX_HARD).recipients] == ["jane.doe@example.com"]
    # ...and a non-standard notice becomes an empty report that says why, not a crash.
    report = parse_bounce(EXIM_TEXT)
    assert report.recipients == ()
    assert report.reason == "looks like a bounce but names no failed recipient that can be read"
    assert report.message_id == "<send-46.1717408800@tributary.example>"


def test_parse_error_is_a_tributary_error() -> None:
    from core.errors import TributaryError

    assert issubclass(BounceParseError, TributaryError)
    assert isinstance(parse_bounce(POSTFIX_HARD), BounceReport)


# --- CLI -------------------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `tributary ARGS` through the production error handling (cli.errors.run_cli), on an app
    holding only the bounces group, so the test does not depend on other command groups."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.callback()(lambda: None)
    bounces_cli.register(app)
    monkeypatch.setattr(sys, "argv", ["tributary", *args])
    try:
        cli_errors.run_cli(app)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_parse_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    hard = tmp_path / "hard.eml"
    hard.write_bytes(POSTFIX_HARD)
    soft = tmp_path / "soft.eml"
    soft.write_bytes(POSTFIX_SOFT_DELAYED)

    code, out, err = run_cli(
        monkeypatch, capsys, "bounces", "parse", str(hard), str(soft), str(CORPUS / "yahoo_04.txt"), "--json"
    )

    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(row["file"], [(r["address"], r["class"]) for r in row["recipients"]]) for row in rows] == [
        (str(hard), [("jane.doe@example.com", "hard")]),
        (str(soft), [("full@example.org", "soft")]),
        (str(CORPUS / "yahoo_04.txt"), [("userx@example.es", "soft"), ("usery@example.uk", "soft")]),
    ]
    assert rows[0]["recipients"][0]["status"] == "5.1.1"
    assert rows[0]["message_id"] == "<send-42.1717408800@tributary.example>"
    assert all("error" not in row for row in rows)


def test_cli_parse_goes_on_after_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    no_recipient = tmp_path / "norcpt.eml"
    no_recipient.write_bytes(dsn(""))
    missing = tmp_path / "missing.eml"
    good = tmp_path / "good.eml"
    good.write_bytes(GMAIL)
    not_bounce = tmp_path / "plain.eml"
    not_bounce.write_bytes(ORIGINAL)

    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "bounces",
        "parse",
        str(empty),
        str(no_recipient),
        str(missing),
        str(good),
        str(not_bounce),
        "--json",
    )

    assert code == 1
    assert err.strip() == "error: 3 of 5 file(s) could not be parsed"
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(row["file"], row.get("error_code")) for row in rows] == [
        (str(empty), "empty"),
        (str(no_recipient), "dsn_without_recipients"),
        (str(missing), "unreadable"),
        (str(good), None),
        (str(not_bounce), None),
    ]
    assert rows[0]["error"] == "empty message"
    assert rows[2]["error"] == "cannot read file: No such file or directory"
    assert [(r["address"], r["class"]) for r in rows[3]["recipients"]] == [("nobody.here@gmail.com", "hard")]
    assert (rows[4]["recipients"], rows[4]["note"]) == ([], "not a bounce: no failed recipient found")


def test_cli_parse_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    hard = tmp_path / "hard.eml"
    hard.write_bytes(POSTFIX_HARD)

    code, out, _ = run_cli(monkeypatch, capsys, "bounces", "parse", str(hard))

    assert code == 0
    assert out == f"{hard}: jane.doe@example.com hard 5.1.1\n"


def test_dsn_block_without_action_or_status_is_reported_not_guessed() -> None:
    report = parse_bounce(dsn("Final-Recipient: rfc822; a@example.com\n"))

    assert report.recipients == ()
    assert report.reason == "delivery status notification gives no Action or Status for its recipients"
