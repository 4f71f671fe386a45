"""A generated mailbox: business senders with signatures, calendar invitations (inline and .ics),
webmail and role senders, a private-marked company, replies; every subject and body carries a
sentinel that must never reach the database."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

SUBJECT_SENTINEL = "SUBJSENTINEL"
BODY_SENTINEL = "BODYSENTINEL"
OWNER = "rep@ourteam.test"

FIRST = ["Jane", "Karl", "Priya", "Tom", "Ana", "Mia", "Liam", "Noah", "Emma", "Olga", "Ravi", "Sofia", "Hugo", "Ines"]
LAST = ["Doe", "Meyer", "Raman", "Obrien", "Lima", "Wong", "Berg", "Costa", "Novak", "Sato", "Khan", "Rossi", "Dubois"]
TITLES = ["VP of Sales", "Head of Procurement", "Senior Account Executive", "CTO", "Marketing Director", "Buyer"]
COMPANIES = [("Acme", "acme.test"), ("Initech", "initech.test"), ("Globex", "globex.test"), ("Hooli", "hooli.test"),
             ("Umbrella", "umbrella.test"), ("Stark", "stark.test"), ("Wayne", "wayne.test")]
PRIVATE_DOMAIN = "secretclient.test"
WEBMAIL = ["gmail.com", "yahoo.com", "hotmail.com"]


@dataclass(frozen=True)
class Someone:
    first: str
    last: str
    company: str
    domain: str
    title: str
    phone: str  # E.164

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def address(self) -> str:
        return f"{self.first.lower()}.{self.last.lower()}@{self.domain}"


@dataclass
class Corpus:
    messages: list[bytes] = field(default_factory=list)
    signers: dict[str, Someone] = field(default_factory=dict)  # address -> who signed with full details
    named: dict[str, str] = field(default_factory=dict)  # business address -> display name / CN
    webmail: set[str] = field(default_factory=set)
    private: set[str] = field(default_factory=set)
    reply_ids: list[str] = field(default_factory=list)  # In-Reply-To of the replies, in order


def people(rng: random.Random, count: int) -> list[Someone]:
    out = {}
    while len(out) < count:
        company, domain = rng.choice(COMPANIES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = f"+1415555{rng.randrange(100, 199):03d}{rng.randrange(0, 10)}"
        who = Someone(first, last, company, domain, rng.choice(TITLES), phone)
        out.setdefault(who.address, who)
    return list(out.values())


def _message(n: int, sender: str, to: list[str], cc: list[str] = (), text: str = "", when: datetime | None = None):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = f"{SUBJECT_SENTINEL}-{n} quarterly pricing"
    msg["Message-ID"] = make_msgid(domain="mail.test")
    msg["Date"] = format_datetime(when or datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n))
    msg.set_content(f"Hello,\n\n{BODY_SENTINEL}-{n}: our deal is worth 40000 USD.\n\n{text}")
    return msg


def signature(who: Someone) -> str:
    return f"Best regards,\n{who.name}\n{who.title} | {who.company}\nT: {who.phone}\nwww.{who.domain}\n"


def invitation(organizer: Someone, attendees: list[Someone], n: int) -> bytes:
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN", "METHOD:REQUEST", "BEGIN:VEVENT",
        f"UID:evt-{n}@mail.test", "DTSTAMP:20261101T090000Z", "DTSTART:20261105T090000Z",
        f"SUMMARY:{SUBJECT_SENTINEL}-{n} pricing call", f"DESCRIPTION:{BODY_SENTINEL}-{n} agenda",
        f'ORGANIZER;CN="{organizer.name}":mailto:{organizer.address}',
    ]
    for a in attendees:
        lines.append(f'ATTENDEE;CN="{a.name}";ROLE=REQ-PARTICIPANT:mailto:{a.address}')
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode()


def build(seed: int = 7, size: int = 300) -> Corpus:
    rng = random.Random(seed)
    crowd = people(rng, 60)
    corpus = Corpus()
    secret = Someone("Vera", "Hidden", "Secret Client", PRIVATE_DOMAIN, "CEO", "+14155550999")
    for n in range(size):
        kind = n % 6
        a, b, c = rng.sample(crowd, 3)
        if kind in (0, 1):  # a signed message from a business sender, colleagues in Cc
            msg = _message(n, f"{a.name} <{a.address}>", [OWNER], [f"{b.name} <{b.address}>"], signature(a))
            corpus.signers[a.address] = a
            corpus.named.setdefault(b.address, b.name)
        elif kind == 2:  # an invitation, inline text/calendar and as an .ics attachment
            msg = _message(n, f"{a.name} <{a.address}>", [OWNER])
            data = invitation(a, [b, c], n)
            if n % 12 == 2:
                msg.add_attachment(data, maintype="text", subtype="calendar", params={"method": "REQUEST"})
            else:
                msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="invite.ics")
            for who in (a, b, c):
                corpus.named.setdefault(who.address, who.name)
        elif kind == 3:  # webmail and role senders: skipped
            webmail = f"{a.first.lower()}{n}@{rng.choice(WEBMAIL)}"
            msg = _message(n, f"{a.name} <{webmail}>", [OWNER], [f"info@{b.domain}"], signature(a))
            corpus.webmail.add(webmail)
        elif kind == 4:  # the private-marked company
            msg = _message(n, f"{secret.name} <{secret.address}>", [OWNER], text=signature(secret))
            corpus.private.add(secret.address)
        else:  # a reply to one of our sends
            msg = _message(n, f"{a.name} <{a.address}>", [OWNER])
            ref = f"<send-{n}@tributary.test>"
            msg["In-Reply-To"] = ref
            msg["References"] = f"<older-{n}@tributary.test> {ref}"
            corpus.reply_ids.append(ref)
            corpus.named.setdefault(a.address, a.name)
        corpus.messages.append(bytes(msg))
    for address in corpus.signers:
        corpus.named[address] = corpus.signers[address].name
    return corpus
