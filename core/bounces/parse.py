"""Parse a raw bounce message into the recipients that failed, each hard or soft.

Two readers, most authoritative first:

1. RFC 3464 delivery status notifications (`multipart/report; report-type=delivery-status`), read
   field by field with the standard library's email package, so each recipient comes with its
   Action, enhanced status code (RFC 3463), Diagnostic-Code and Remote-MTA.
2. Everything else (qmail, Exim, old Exchange, Yahoo, GroupWise, ...) through flufl.bounce's
   detectors, which tell only permanent from temporary failures; the status code and diagnostic
   are then recovered, when the notice shows them, from the text around the address.

Classification (the refund rule depends on it, so it is stated once, in `classify`):

* hard: Status 5.x.x; or Action failed/error with no status code; or a permanent failure by a
  non-standard notice (flufl.bounce's permanent set).
* soft: Action delayed (the MTA is still retrying, whatever the code); Status 4.x.x even with Action
  failed (e.g. 4.4.7 "delivery time expired": the server was unreachable for days, which says
  nothing against the mailbox); a full mailbox (X.2.2, or a generic X.0.0 code whose text says quota
  / mailbox full), because the issue counts a full mailbox as soft, as common practice does; a
  temporary failure by a non-standard notice.
* 5.7.x (policy, blocked as spam) stays hard as the issue's "5.x.x is hard" says, but carries
  reason `blocked` so the refund and status-downgrade rules can treat it differently.

Addresses are lower-cased (the domain is case-insensitive, and in practice so are local parts;
sends are matched on the lower-cased form). The original message's Message-ID is recovered from a
returned `message/rfc822` part, a `text/rfc822-headers` part, a quoted copy in the text, or the
bounce's In-Reply-To/References, in that order; `message_id_source` says which.

Input that cannot be read as a message, and a DSN that names no recipient, raise BounceParseError
with a stable `code`. A readable message in which no failed recipient is found is an empty report
with a `reason` (auto-replies and unattributable notices land in a bounce mailbox too; the caller
keeps them, this module never drops them silently).
"""

from __future__ import annotations

import email
import email.errors
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from typing import Literal

from flufl.bounce import all_failures

from core.errors import InvalidInput

log = logging.getLogger(__name__)

# A bounce carries the original message at most; anything bigger is not a bounce we should parse
# in memory. (Callers reading files enforce it before reading everything.)
MAX_BOUNCE_BYTES = 25 * 1024 * 1024

_ENHANCED_CODE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID_LINE = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_MSGID = re.compile(r"<[^<>\s]+>")

# Diagnostic text, used only when the status code is missing or generic (X.0.0).
_TEXT_REASONS: list[tuple[str, re.Pattern[str]]] = [
    ("no_mx", re.compile(r"null mx", re.IGNORECASE)),
    (
        "full_inbox",
        re.compile(
            r"quota|mailbox (?:is )?full|mailbox size limit|insufficient (?:disk|storage)|exceeded storage"
            r"|storage (?:allocation|space)",
            re.IGNORECASE,
        ),
    ),
    (
        "mailbox_not_found",
        re.compile(
            r"user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|doesn't exist"
            r"|mailbox (?:unavailable|not found)|invalid (?:recipient|mailbox)|unknown recipient"
            r"|recipient (?:address )?rejected|not a valid user|no mailbox|address rejected|unrouteable"
            r"|(?:recipient|user|address) not found",
            re.IGNORECASE,
        ),
    ),
    ("disabled", re.compile(r"disabled|inactive|suspended|deactivated|account (?:is )?closed", re.IGNORECASE)),
    ("blocked", re.compile(r"blocked|blacklist|blocklist|\bspam\b|policy|reputation", re.IGNORECASE)),
    ("domain_not_found", re.compile(r"host (?:or domain )?not found|domain not found|nxdomain", re.IGNORECASE)),
    ("timeout", re.compile(r"timed out|time expired|expired|no answer from host", re.IGNORECASE)),
]

# RFC 3463 subject.detail -> reason. Reasons follow the email-status vocabulary of DESIGN.md.
# X.1.10 is left to the text: RFC 7505 made it "null MX", but Exchange Online sends 5.1.10 for
# "recipient not found by SMTP address lookup".
_CODE_REASONS: dict[tuple[str, str], str] = {
    ("1", "1"): "mailbox_not_found",
    ("1", "2"): "domain_not_found",
    ("1", "3"): "bad_address_syntax",
    ("1", "6"): "moved",
    ("2", "1"): "disabled",
    ("2", "2"): "full_inbox",
    ("2", "3"): "message_too_large",
    ("4", "4"): "domain_not_found",
    ("4", "7"): "timeout",
}

# MIME defects after which the structure of the message cannot be trusted.
_STRUCTURAL_DEFECTS = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.MissingHeaderBodySeparatorDefect,
)

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|failed|notification)|returned mail|mail delivery|failure notice"
    r"|could not be delivered|non.?delivery",
    re.IGNORECASE,
)


class BounceClass(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class BounceParseError(InvalidInput):
    """The bytes cannot be read as a bounce. `code` is stable: empty, not_bytes, too_large,
    not_an_email, malformed_mime, dsn_without_recipients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str  # lower-cased; the address the original message was sent to
    bounce_class: BounceClass
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    reason: str | None = None  # mailbox_not_found, full_inbox, disabled, blocked, timeout, ...
    diagnostic: str | None = None  # the server's words, unfolded, at most 500 characters
    action: str | None = None  # DSN Action (failed, delayed); None for non-standard notices
    original_recipient: str | None = None  # DSN Original-Recipient, when given
    final_recipient: str | None = None  # DSN Final-Recipient (may differ after aliasing)
    remote_mta: str | None = None


@dataclass(frozen=True, slots=True)
class BounceReport:
    recipients: tuple[BouncedRecipient, ...]
    format: Literal["dsn", "non_standard", "none"]
    message_id: str | None = None  # Message-ID of the original message that bounced, with <>
    message_id_source: str | None = None
    original_to: tuple[str, ...] = ()  # To/Cc of the returned original, lower-cased
    bounce_message_id: str | None = None  # the bounce's own Message-ID: spots duplicate deliveries
    reporting_mta: str | None = None
    reason: str | None = None  # why `recipients` is empty
    defects: tuple[str, ...] = ()  # MIME defects the email package reported, never hidden

    @property
    def hard(self) -> tuple[BouncedRecipient, ...]:
        return tuple(r for r in self.recipients if r.bounce_class is BounceClass.HARD)

    @property
    def soft(self) -> tuple[BouncedRecipient, ...]:
        return tuple(r for r in self.recipients if r.bounce_class is BounceClass.SOFT)


def classify(action: str | None, status: str | None, reason: str | None) -> BounceClass | None:
    """Hard, soft, or None when the block reports no failure (delivered, relayed, expanded)."""
    action = (action or "").lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    if action == "delayed":
        return BounceClass.SOFT
    if status is not None and status.startswith("4"):
        return BounceClass.SOFT
    if reason == "full_inbox":
        return BounceClass.SOFT
    if status is not None and status.startswith("5"):
        return BounceClass.HARD
    if action in ("failed", "error"):  # opensmtpd writes the non-standard "error"
        return BounceClass.HARD
    return None


def status_reason(status: str | None, text: str | None) -> str | None:
    """Reason from the enhanced code when specific, else from the diagnostic text."""
    if status is not None:
        _, subject, detail = status.split(".")
        if subject == "7":
            return "blocked"
        if (subject, detail) in _CODE_REASONS:
            return _CODE_REASONS[(subject, detail)]
        if subject == "4":
            return "routing"
    if text:
        for reason, pattern in _TEXT_REASONS:
            if pattern.search(text):
                return reason
    return None


def parse_bounce(raw: bytes) -> BounceReport:
    """Read one bounce message. Raises BounceParseError when it cannot be read (see module doc)."""
    if not isinstance(raw, bytes | bytearray):
        raise BounceParseError("not_bytes", f"expected the raw message as bytes, got {type(raw).__name__}")
    if not raw.strip():
        raise BounceParseError("empty", "empty message")
    if len(raw) > MAX_BOUNCE_BYTES:
        raise BounceParseError("too_large", f"message larger than {MAX_BOUNCE_BYTES} bytes")
    try:
        # compat32 (the default) is the policy flufl.bounce's detectors are written against.
        msg = email.message_from_bytes(bytes(raw))
        return _read(msg)
    except BounceParseError:
        raise
    except Exception as exc:
        # The email package and the heuristic detectors are lenient parsers facing hostile input;
        # an exception they did not foresee is this message's problem, not the batch's.
        log.warning("bounce parse failed", exc_info=True)
        raise BounceParseError("malformed_mime", f"cannot read the message: {type(exc).__name__}: {exc}") from exc


def _read(msg: Message) -> BounceReport:
    if not msg.keys():
        raise BounceParseError("not_an_email", "no header fields: not an email message")
    defects = tuple(sorted({type(d).__name__ for part in msg.walk() for d in part.defects}))
    structural = any(isinstance(d, _STRUCTURAL_DEFECTS) for part in msg.walk() for d in part.defects)

    dsn_parts = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    reporting_mta: str | None = None
    recipients: list[BouncedRecipient] = []
    # Per-recipient blocks that yield no recipient, counted by why.
    skipped: dict[str, int] = {"no_address": 0, "success": 0, "unclassified": 0}
    for part in dsn_parts:
        per_message, blocks = _dsn_blocks(part)
        reporting_mta = reporting_mta or _strip_type(per_message.get("reporting-mta"))
        for block in blocks:
            found = _dsn_recipient(block)
            if isinstance(found, BouncedRecipient):
                recipients.append(found)
            elif found is not None:
                skipped[found] += 1
    fmt: Literal["dsn", "non_standard", "none"] = "dsn" if recipients else "none"

    if not recipients:
        recipients = _heuristic_recipients(msg)
        fmt = "non_standard" if recipients else "none"

    message_id, source, original_to = _original_message(msg)
    report = BounceReport(
        recipients=tuple(_dedupe(recipients)),
        format=fmt,
        message_id=message_id,
        message_id_source=source,
        original_to=original_to,
        bounce_message_id=_first_msgid(msg.get("message-id")),
        reporting_mta=reporting_mta,
        defects=defects,
    )
    if report.recipients:
        return report

    if dsn_parts and not skipped["success"] and not skipped["unclassified"]:
        # A delivery-status report whose recipient blocks name nobody (or that has none at all).
        without = skipped["no_address"]
        raise BounceParseError(
            "dsn_without_recipients",
            "delivery status notification names no recipient"
            + (f" ({without} recipient block(s) without an address)" if without else ""),
        )
    if structural:
        raise BounceParseError("malformed_mime", f"malformed MIME structure ({', '.join(defects)}); no recipient found")
    if dsn_parts and skipped["unclassified"]:
        reason = "delivery status notification gives no Action or Status for its recipients"
    elif dsn_parts:
        reason = "delivery status notification reports no failure (delivered, relayed or expanded)"
    elif _looks_like_bounce(msg):
        reason = "looks like a bounce but names no failed recipient that can be read"
    else:
        reason = "not a bounce: no failed recipient found"
    return BounceReport(
        recipients=(),
        format="none",
        message_id=message_id,
        message_id_source=source,
        original_to=original_to,
        bounce_message_id=report.bounce_message_id,
        reporting_mta=reporting_mta,
        reason=reason,
        defects=defects,
    )


# --- RFC 3464 --------------------------------------------------------------------------------------


def _dsn_blocks(part: Message) -> tuple[Message, list[Message]]:
    """The per-message field block and the per-recipient blocks of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    else:
        # Built by hand or mangled in transit: the groups are still "fields, blank line, fields".
        text = payload if isinstance(payload, str) else ""
        groups = [g for g in re.split(r"\r?\n[ \t]*\r?\n", text.strip()) if g.strip()]
        blocks = [HeaderParser().parsestr(g + "\n") for g in groups]
    if not blocks:
        return Message(), []
    # The first group is per-message unless it already carries a recipient (some MTAs omit it).
    first = blocks[0]
    if any(first.get(f) for f in ("final-recipient", "original-recipient", "action")):
        return Message(), blocks
    return first, blocks[1:]


def _dsn_recipient(block: Message) -> BouncedRecipient | Literal["no_address", "success", "unclassified"] | None:
    """The failed recipient a block reports, else why not (None: an empty block, e.g. a stray
    blank line)."""
    if not block.keys():
        return None
    action = (_unfold(block.get("action")) or "").split(None, 1)[0:1]
    action_word = action[0].lower() if action else None
    status_field = _unfold(block.get("status"))
    status = _enhanced(status_field)
    diagnostic = _strip_type(block.get("diagnostic-code"))
    if status is None:
        status = _enhanced(diagnostic)
    # The comment on a Status line ("5.0.0 (recipient reached disk quota)") is a diagnostic too.
    status_comment = None
    if status_field:
        status_comment = _ENHANCED_CODE.sub("", status_field, count=1).strip(" ()") or None
    detail_text = " ".join(t for t in (diagnostic, status_comment) if t) or None
    reason = status_reason(status if status and not status.endswith(".0.0") else None, detail_text)
    if reason is None and status is not None:
        reason = status_reason(status, None)
    bounce_class = classify(action_word, status, reason)

    original = _rfc822_address(block.get("original-recipient"))
    final = _rfc822_address(block.get("final-recipient")) or _rfc822_address(block.get("x-actual-recipient"))
    address = original or final
    if bounce_class is None:
        return "success" if action_word in ("delivered", "relayed", "expanded") else "unclassified"
    if address is None:
        return "no_address"
    return BouncedRecipient(
        address=address,
        bounce_class=bounce_class,
        status=status,
        reason=reason,
        diagnostic=_clip(diagnostic or status_comment),
        action=action_word,
        original_recipient=original,
        final_recipient=final,
        remote_mta=_strip_type(block.get("remote-mta")),
    )


def _rfc822_address(value: object) -> str | None:
    """`rfc822; user@example.com` -> user@example.com. Other address types (x400, unknown) only
    when the value still holds an internet address."""
    text = _unfold(value)
    if not text:
        return None
    kind, sep, rest = text.partition(";")
    candidate = rest if sep else kind
    if sep and kind.strip().lower() != "rfc822" and "@" not in rest:
        return None
    address = parseaddr(candidate.strip())[1] or candidate.strip().strip("<>")
    return _clean_address(address)


# --- non-standard notices --------------------------------------------------------------------------


def _heuristic_recipients(msg: Message) -> list[BouncedRecipient]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        # flufl.bounce re-raises whatever a detector hit; one bad detector must not lose the message.
        log.warning("flufl.bounce detectors failed", exc_info=True)
        return []
    text = _notice_text(msg)
    found: list[BouncedRecipient] = []
    for raw_set, default_class in ((permanent, BounceClass.HARD), (temporary, BounceClass.SOFT)):
        for raw_address in sorted(raw_set):
            address = _clean_address(raw_address.decode("ascii", "replace"))
            if address is None:
                continue
            diagnostic = _context(text, address)
            status = _enhanced(diagnostic)
            reason = status_reason(status if status and not status.endswith(".0.0") else None, diagnostic)
            bounce_class = default_class
            # A code shown next to the address is better evidence than the detector's guess, and a
            # full mailbox is soft (module doc), but a delay notice never becomes hard.
            if (status is not None and status.startswith("4")) or reason == "full_inbox":
                bounce_class = BounceClass.SOFT
            found.append(
                BouncedRecipient(
                    address=address,
                    bounce_class=bounce_class,
                    status=status,
                    reason=reason,
                    diagnostic=diagnostic,
                )
            )
    return found


def _notice_text(msg: Message) -> str:
    """The human-readable notice: text parts outside any returned original message."""
    chunks: list[str] = []
    for part in _parts_outside_originals(msg):
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            chunks.append(_decoded_text(part))
    return "\n".join(chunks)


def _parts_outside_originals(msg: Message) -> Iterator[Message]:
    yield msg
    if msg.is_multipart() and msg.get_content_type() != "message/rfc822":
        for sub in msg.get_payload():
            if isinstance(sub, Message):
                yield from _parts_outside_originals(sub)


def _context(text: str, address: str) -> str | None:
    """The line naming the address and the lines after it up to a blank line: where notices put
    the server's reply."""
    lower = text.lower()
    at = lower.find(address)
    if at < 0:
        return None
    start = lower.rfind("\n", 0, at) + 1
    end = lower.find("\n\n", at)
    snippet = text[start : end if end >= 0 else len(text)]
    return _clip(" ".join(snippet.split()))


# --- the original message --------------------------------------------------------------------------


def _original_message(msg: Message) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(Message-ID, where it was found, To/Cc addresses) of the message that bounced."""
    for part in msg.walk():
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
            source = "message/rfc822"
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser().parsestr(_decoded_text(part))
            source = "text/rfc822-headers"
        else:
            continue
        if headers is None:
            continue
        message_id = _first_msgid(headers.get("message-id"))
        to = _addresses(headers.get_all("to", []) + headers.get_all("cc", []))
        if message_id or to:
            return message_id, source if message_id else None, to
    match = _MESSAGE_ID_LINE.search(_notice_text(msg)) if msg.get_content_maintype() != "message" else None
    if match:
        return match.group(1), "quoted text", ()
    # Some servers thread the bounce to the original; the weakest evidence, so last.
    for header in ("in-reply-to", "references"):
        message_id = _first_msgid(msg.get(header))
        if message_id:
            return message_id, header, ()
    return None, None, ()


# --- small helpers ---------------------------------------------------------------------------------


def _unfold(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _strip_type(value: object) -> str | None:
    """`smtp; 550 5.1.1 ...` -> `550 5.1.1 ...` (RFC 3464 typed fields)."""
    text = _unfold(value)
    if text is None:
        return None
    kind, sep, rest = text.partition(";")
    if sep and re.fullmatch(r"[A-Za-z0-9-]+", kind.strip()):
        return rest.strip() or None
    return text


def _enhanced(text: str | None) -> str | None:
    if not text:
        return None
    match = _ENHANCED_CODE.search(text)
    return ".".join(match.groups()) if match else None


def _clean_address(address: str) -> str | None:
    address = address.strip().strip("<>").strip().lower()
    if "@" not in address or any(ch.isspace() for ch in address) or "\ufffd" in address:
        return None
    return address


def _addresses(values: Iterable[object]) -> tuple[str, ...]:
    found = [_clean_address(addr) for _, addr in getaddresses([str(v) for v in values])]
    return tuple(dict.fromkeys(a for a in found if a))


def _first_msgid(value: object) -> str | None:
    text = _unfold(value)
    if not text:
        return None
    match = _MSGID.search(text)
    return match.group(0) if match else None


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name in the wild
            return payload.decode("latin-1")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _clip(text: str | None, limit: int = 500) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dedupe(recipients: list[BouncedRecipient]) -> list[BouncedRecipient]:
    """One entry per address; hard wins over soft (a message can report a delay, then a failure)."""
    by_address: dict[str, BouncedRecipient] = {}
    for r in recipients:
        kept = by_address.get(r.address)
        if kept is None or (kept.bounce_class is BounceClass.SOFT and r.bounce_class is BounceClass.HARD):
            by_address[r.address] = r
    return list(by_address.values())


def _looks_like_bounce(msg: Message) -> bool:
    sender = parseaddr(str(msg.get("from", "")))[1].lower()
    return (
        msg.get_content_type() == "multipart/report"
        or sender.startswith(("mailer-daemon@", "postmaster@"))
        or bool(_BOUNCE_SUBJECT.search(str(msg.get("subject", ""))))
    )
