"""A reply seen in a member's connected mailbox is engagement evidence: the connected-mailbox sync feeds
it to the engagement service (Services wires the two), and only a reply to a real send counts."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import Engine, select

from core.people.contacts import NewEmail, NewPerson, add_person
from core.sending.relays import Relays
from storage.models import EmailAddress
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow
from tests.engagement.test_replies import send
from tests.mailboxes.helpers import connect, deliver_all, services_for, team_with_member
from tests.mailpeers.imap import start_imap


def _reply(sender: str, to: str, in_reply_to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Kim Park <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Re: Hello"
    msg["Date"] = format_datetime(utcnow() - timedelta(minutes=5))
    msg["Message-ID"] = f"<reply.{abs(hash(in_reply_to))}@initech.test>"
    msg["In-Reply-To"] = in_reply_to
    msg.set_content("Sounds good, let's talk on Tuesday.\n\nKim Park\nHead of Data, Initech\n")
    return bytes(msg)


def _status(engine: Engine, address: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(EmailAddress.status).where(EmailAddress.address == address)).scalar_one()


def test_a_reply_in_a_connected_mailbox_promotes_the_address_and_a_forged_one_does_not(
    engine: Engine, db_url: str, tmp_path
) -> None:
    imap = start_imap()
    try:
        imap.empty()
        svc = services_for(engine, db_url, tmp_path)
        member_email = team_with_member(svc, "acme", "rep@acme.test")
        member = svc.accounts.member(member_email, "acme")
        relay = Relays(engine, svc.accounts).set_relay("acme", host="127.0.0.1", port=2525, starttls=False)
        checked = utcnow() - timedelta(days=10)
        for address in ("kim@initech.test", "lee@initech.test"):
            add_person(engine, NewPerson(full_name=address[:3].title() + " Park",
                                         emails=[NewEmail(address, EmailStatus.VERIFIED, 90, checked)]))  # fmt: skip
        kim = send(engine, member.team_id, member.id, relay.id, "kim@initech.test", utcnow() - timedelta(days=2))
        connect(svc, "acme", member_email, imap)
        deliver_all(imap, [
            _reply("kim@initech.test", member_email, kim),
            # lee never got a send of ours: quoting kim's Message-ID proves nothing about lee
            _reply("lee@initech.test", member_email, kim),
        ])  # fmt: skip
        svc.mailbox_sync().sync("acme", member_email)
        assert _status(engine, "kim@initech.test") == EmailStatus.LIKELY_TO_ENGAGE.value
        assert _status(engine, "lee@initech.test") == EmailStatus.VERIFIED.value
    finally:
        imap.stop()
