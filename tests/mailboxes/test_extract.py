"""Reading one message: headers, the sender's signature, invitations, reply ids, the email provider
(from transport headers, and from MX against a loopback DNS)."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from core.mailboxes.calendar import invitation_people
from core.mailboxes.extract import read_message
from core.mailboxes.providers import MxLookup, provider_for_hosts
from tests.mailboxes import corpus as gen
from tests.mailnet import MailNet


def _msg(**headers) -> EmailMessage:
    msg = EmailMessage()
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_header_names_and_addresses_are_read_and_broken_names_dropped() -> None:
    msg = _msg(From='"Doe, Jane" <Jane.Doe@Acme.test>', To='bob@initech.test, "x@y.test" <x@y.test>',
               Cc="Kim Lee <kim@globex.test>", Reply_To="Jane Doe <jane@acme.test>", Subject="secret")
    msg.set_content("body")
    facts = read_message(bytes(msg))
    got = {p.address: p.name for p in facts.people}
    assert got == {"jane.doe@acme.test": "Doe, Jane", "jane@acme.test": "Jane Doe", "bob@initech.test": None,
                   "x@y.test": None, "kim@globex.test": "Kim Lee"}
    assert facts.sender == "jane.doe@acme.test"
    assert not hasattr(facts, "subject") and "secret" not in repr(facts)


def test_the_signature_is_attached_to_the_sender_only_and_html_only_mail_works() -> None:
    msg = _msg(From="Mia Wong <mia@initrode.test>", To="Liam Berg <liam@acme.test>")
    msg.set_content("<p>Hi</p><p>Thanks,<br>Mia Wong<br>CTO, Initrode<br>+1 415 555 0111</p>", subtype="html")
    facts = read_message(bytes(msg))
    sender = next(p for p in facts.people if p.address == "mia@initrode.test")
    other = next(p for p in facts.people if p.address == "liam@acme.test")
    assert sender.signature is not None and sender.signature.title == "CTO" and other.signature is None
    assert [p.e164 for p in sender.signature.phones] == ["+14155550111"]


def test_invitations_give_organiser_and_attendees_and_nothing_else() -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\n"
        "SUMMARY:Secret pricing\r\nORGANIZER;CN=Ana Lima:mailto:ana@stark.test\r\n"
        "ATTENDEE;CN=\"Hugo Dubois\":MAILTO:Hugo@Wayne.test\r\nATTENDEE:mailto:noname@wayne.test\r\n"
        "ATTENDEE;CN=cn@wayne.test:mailto:cn@wayne.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    people = invitation_people(ics.encode())
    assert [(p.address, p.name, p.organizer) for p in people] == [
        ("ana@stark.test", "Ana Lima", True),
        ("hugo@wayne.test", "Hugo Dubois", False),
        ("noname@wayne.test", None, False),
        ("cn@wayne.test", None, False),
    ]
    assert invitation_people(b"not a calendar") == []


def test_reply_ids_and_date_are_read_for_the_engagement_hook() -> None:
    msg = _msg(From="a@acme.test", To="b@initech.test", In_Reply_To="<s1@tributary.test>",
               References="<s0@tributary.test> <s1@tributary.test>", Date="Tue, 01 Dec 2026 10:00:00 +0100")
    msg.set_content("ok")
    reply = read_message(bytes(msg)).reply
    assert reply.from_address == "a@acme.test"
    assert reply.in_reply_to == "<s1@tributary.test>"
    assert reply.references == ("<s0@tributary.test>", "<s1@tributary.test>")
    assert reply.received_at.isoformat() == "2026-12-01T09:00:00+00:00"


def test_the_senders_provider_is_read_from_transport_headers() -> None:
    google = _msg(From="a@acme.test", X_Gm_Message_State="AOJu0Y...")
    outlook = _msg(From="a@acme.test", Received="from x by AM0PR01MB1234.eurprd01.prod.protection.outlook.com")
    plain = _msg(From="a@acme.test", Received="from x by mx.acme.test with ESMTP")
    for m in (google, outlook, plain):
        m.set_content("x")
    assert [read_message(bytes(m)).sender_provider for m in (google, outlook, plain)] == ["google", "microsoft", None]
    assert provider_for_hosts(["acme-test.mail.protection.outlook.com."]) == "microsoft"
    assert provider_for_hosts(["notgoogle.com"]) is None


def test_mx_lookup_names_the_provider_from_a_loopback_dns() -> None:
    net = MailNet()
    net.add_domain("acme.test", hosts=[net.add_host("aspmx.l.google.com")])
    net.add_domain("initech.test")
    with net:
        lookup = MxLookup(net.verifier_config())
        assert lookup.provider("acme.test") == "google"
        assert lookup.provider("initech.test") is None
        assert lookup.provider("missing.test") is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 59), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=20),
       st.floats(0.0, 1.0))
def test_a_damaged_or_truncated_message_is_read_without_raising(index: int, flips, keep: float) -> None:
    raw = bytearray(_CORPUS.messages[index])
    for position, value in flips:
        raw[position % len(raw)] = value
    facts = read_message(bytes(raw[: max(1, int(len(raw) * keep))]))
    assert all("@" in p.address for p in facts.people)


_CORPUS = gen.build(size=60)
