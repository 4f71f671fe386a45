"""Turn one message (headers and the start of its text) into the people it names and its reply data.

Reads From/To/Cc/Reply-To display names and addresses, the sender's signature, and calendar
invitations. The subject and the body are read only to find those and are never returned: the
result types below have no field they could travel in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import MessageError
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

from core.mailboxes.calendar import invitation_people
from core.mailboxes.providers import provider_from_headers
from core.mailboxes.signatures import Signature, parse_signature
from storage.timeutil import as_utc

ADDRESS_HEADERS = ("from", "reply-to", "to", "cc")
MAX_ADDRESSES_PER_MESSAGE = 200
MAX_REFERENCES = 50
MAX_MESSAGE_ID_CHARS = 998  # RFC 5322 line limit
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})


@dataclass(frozen=True)
class SeenPerson:
    """A person a message names. Business fields only."""

    address: str
    name: str | None
    signature: Signature | None = None  # only ever the sender's own


@dataclass(frozen=True)
class ReplyData:
    """What the engagement service needs to match a reply to a send (no content)."""

    from_address: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    received_at: datetime | None


@dataclass(frozen=True)
class MessageFacts:
    people: tuple[SeenPerson, ...]
    sender: str | None
    sender_provider: str | None  # the sender's email provider, from transport headers
    reply: ReplyData


def read_message(raw: bytes, region: str = "US") -> MessageFacts:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    people: dict[str, SeenPerson] = {}
    sender = None
    for header in ADDRESS_HEADERS:
        for name, address in _addresses(message, header):
            if len(people) >= MAX_ADDRESSES_PER_MESSAGE:
                break
            if header == "from" and sender is None:
                sender = address
            if address not in people or (name and not people[address].name):
                people[address] = SeenPerson(address, name)
    if sender is not None:
        signature = parse_signature(_first_text(message), people[sender].name, region)
        if signature is not None:
            people[sender] = SeenPerson(sender, people[sender].name, signature)
    for data in _calendar_parts(message):
        for invitee in invitation_people(data):
            if invitee.address not in people or (invitee.name and not people[invitee.address].name):
                people[invitee.address] = SeenPerson(invitee.address, invitee.name)
    return MessageFacts(
        people=tuple(people.values()),
        sender=sender,
        sender_provider=provider_from_headers(message),
        reply=_reply_data(message, sender),
    )


def _addresses(message: EmailMessage, header: str) -> list[tuple[str | None, str]]:
    try:
        values = message.get_all(header) or []
        found = []
        for value in values:
            for address in getattr(value, "addresses", ()):
                spec = (address.addr_spec or "").strip().lower()
                if "@" not in spec or len(spec) > 320:
                    continue
                name = (address.display_name or "").strip() or None
                found.append((None if name and "@" in name else name, spec))
        return found
    except (ValueError, IndexError, TypeError, AttributeError, MessageError):
        return []  # a header too broken to read names nobody


def _parts(message: EmailMessage):
    try:
        yield from message.walk()
    except (ValueError, IndexError, TypeError):
        return


def _first_text(message: EmailMessage) -> str:
    html = None
    for part in _parts(message):
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            return _content(part)
        if kind == "text/html" and html is None:
            html = part
    return _html_text(_content(html)) if html is not None else ""


def _content(part) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError, TypeError, AssertionError):
        return ""  # truncated or mislabelled: no signature from this part


def _calendar_parts(message: EmailMessage) -> list[bytes]:
    found = []
    for part in _parts(message):
        if part.is_multipart():
            continue
        filename = (part.get_filename() or "").lower()
        if part.get_content_type() in _CALENDAR_TYPES or filename.endswith(".ics"):
            try:
                payload = part.get_payload(decode=True)
            except (ValueError, TypeError):
                payload = None
            if payload:
                found.append(payload)
    return found


def _reply_data(message: EmailMessage, sender: str | None) -> ReplyData:
    in_reply_to = _ids(message.get("In-Reply-To"))
    references = _ids(message.get("References"))[-MAX_REFERENCES:]
    received = None
    try:
        date = message.get("Date")
        received = as_utc(parsedate_to_datetime(str(date))) if date else None
    except (ValueError, TypeError, IndexError):
        received = None
    return ReplyData(sender, in_reply_to[0] if in_reply_to else None, tuple(references), received)


def _ids(value) -> list[str]:
    if not value:
        return []
    return [m for m in _MESSAGE_ID.findall(str(value)[: MAX_MESSAGE_ID_CHARS * MAX_REFERENCES])]


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._current: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("br", "p", "div", "tr", "li"):
            self._flush()

    def handle_data(self, data) -> None:
        self._current.append(data)

    def _flush(self) -> None:
        self.lines.append("".join(self._current).strip())
        self._current = []


def _html_text(html: str) -> str:
    parser = _TextOf()
    parser.feed(html)
    parser._flush()
    return "\n".join(parser.lines)


__all__ = ["MessageFacts", "ReplyData", "SeenPerson", "read_message"]
