"""Reading SMTP replies: the RFC 3463 enhanced status code first, the reply text as a fallback.

The guiding rule: only a reply that says the *mailbox* is wrong makes an address invalid. Policy
refusals (5.7.x, blocklists) and temporary failures (4xx, greylisting) say nothing about the mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Reply:
    code: int
    text: str  # all lines joined by " / ", without the codes

    @property
    def enhanced(self) -> str | None:
        match = _ENHANCED.match(self.text)
        if match is None or match.group(1) != str(self.code // 100):
            return None  # RFC 3463: the class digit must agree with the reply code
        return ".".join(match.groups())

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return 500 <= self.code < 600


class Outcome(StrEnum):
    """What one probe step tells us about a recipient."""

    ACCEPTED = "accepted"
    NOT_FOUND = "not_found"
    DISABLED = "disabled"
    FULL_INBOX = "full_inbox"
    BLOCKED = "blocked"
    GREYLISTED = "greylisted"
    TEMPORARY = "temporary"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    SMTPUTF8_UNSUPPORTED = "smtputf8_unsupported"
    UNSAFE_ADDRESS = "unsafe_address"
    PROTOCOL_ERROR = "protocol_error"


RETRYABLE = frozenset({Outcome.GREYLISTED, Outcome.TEMPORARY})

_STRONG_BLOCK = re.compile(
    r"spamhaus|spamcop|barracuda|dnsbl|\brbl\b|block ?list|black ?list|listed (at|on|in)|reputation|"
    r"\bspam\b|client host",
    re.I,
)
_DISABLED = re.compile(r"disabled|deactivated|inactive|suspended|account (has been )?closed|\blocked\b", re.I)
_FULL = re.compile(r"\bfull\b|quota|over ?limit|insufficient (system )?storage|exceeded storage", re.I)
_GREYLIST = re.compile(r"gr[ae]y ?list|try (again )?later|temporarily (deferred|rejected)", re.I)
_NOT_FOUND = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address)|does ?n[o']t exist|not exist|"
    r"(mailbox|recipient|user|address) (not found|unknown|unavailable|invalid)|invalid (recipient|mailbox)|"
    r"unknown (recipient|mailbox|address)|recipient address rejected|undeliverable address|"
    r"no mailbox|bad destination mailbox|user not local|unrouteable address",
    re.I,
)
_WEAK_BLOCK = re.compile(r"polic|denied|not allowed|blocked|refused|prohibited|rejected for", re.I)


def _by_text(text: str) -> Outcome | None:
    for pattern, outcome in (
        (_STRONG_BLOCK, Outcome.BLOCKED),
        (_DISABLED, Outcome.DISABLED),
        (_FULL, Outcome.FULL_INBOX),
        (_GREYLIST, Outcome.GREYLISTED),
        (_NOT_FOUND, Outcome.NOT_FOUND),
        (_WEAK_BLOCK, Outcome.BLOCKED),
    ):
        if pattern.search(text):
            return outcome
    return None


def classify_rcpt(reply: Reply) -> Outcome:
    """What a reply to RCPT TO says about that recipient."""
    if reply.is_positive:
        return Outcome.ACCEPTED
    enhanced = reply.enhanced
    subject = detail = None
    if enhanced is not None:
        _, subject, detail = enhanced.split(".")
    if reply.is_temporary:
        if enhanced == f"{reply.code // 100}.2.2":
            return Outcome.FULL_INBOX  # 452 4.2.2: the mailbox exists but is over quota right now
        if subject == "7" or _GREYLIST.search(reply.text):
            return Outcome.GREYLISTED
        return Outcome.TEMPORARY
    if not reply.is_permanent:
        return Outcome.PROTOCOL_ERROR  # 1xx/3xx to RCPT: the server is not speaking SMTP we know
    if subject == "7":
        return Outcome.BLOCKED  # 5.7.x: security or policy, e.g. 5.7.1 listed at a DNSBL
    if subject == "1" and detail in ("0", "1", "2", "3", "6", "10"):
        return Outcome.NOT_FOUND  # bad mailbox / system / syntax, mailbox moved, Null MX
    if subject == "2" and detail == "1":
        return Outcome.DISABLED
    if subject == "2" and detail == "2":
        return Outcome.FULL_INBOX
    # No enhanced code, or one that does not settle it (5.4.1 is Exchange Online's "no such user").
    by_text = _by_text(reply.text)
    if by_text is not None:
        # A permanent code with "try later" wording is contradictory: never call that invalid.
        return Outcome.TEMPORARY if by_text == Outcome.GREYLISTED else by_text
    if reply.code in (550, 551, 553):
        return Outcome.NOT_FOUND  # RFC 5321: mailbox unavailable / not local / name not allowed
    if reply.code == 552:
        return Outcome.FULL_INBOX  # RFC 5321: exceeded storage allocation
    if reply.code == 554:
        return Outcome.BLOCKED  # "transaction failed": at RCPT this is nearly always policy
    return Outcome.PROTOCOL_ERROR


def classify_session(reply: Reply) -> Outcome:
    """What a refusal before any RCPT (banner, MAIL FROM) means for every recipient of the session.

    It can only be about us (sender, IP) or the server's state, never about a mailbox.
    """
    if reply.is_temporary:
        return Outcome.GREYLISTED if (reply.enhanced or "").startswith("4.7.") or _GREYLIST.search(
            reply.text
        ) else Outcome.TEMPORARY
    if reply.is_permanent:
        return Outcome.BLOCKED
    return Outcome.PROTOCOL_ERROR
