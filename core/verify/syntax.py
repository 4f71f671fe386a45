"""Syntax and normalisation of one address (email-validator), with a typo hint for big providers.

Control characters are refused before anything else so that nothing a caller passes can end up as
an extra line on the SMTP wire (the SMTP layer checks again, belt and braces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from rapidfuzz.distance import OSA

from core.verify.domain_facts import FREE_PROVIDERS

# Longest input we even try to parse: RFC 5321 caps a path at 256 octets; this just bounds the work.
MAX_INPUT_CHARS = 1000

# Providers whose misspellings are common enough to be worth a hint.
_TYPO_TARGETS = (
    "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "live.com",
    "msn.com", "protonmail.com", "googlemail.com", "yahoo.co.uk", "hotmail.co.uk", "gmx.com",
    "gmx.de", "web.de", "yandex.ru", "mail.ru", "comcast.net", "orange.fr", "wanadoo.fr",
)


@dataclass(frozen=True)
class ParsedAddress:
    original: str
    normalized: str  # local part as given (Unicode NFC), domain lowercased Unicode
    local_part: str
    domain: str  # Unicode form
    ascii_domain: str  # IDNA A-label form: what DNS and SMTP see
    smtputf8: bool  # the local part is non-ASCII: the server must offer SMTPUTF8

    @property
    def wire_address(self) -> str:
        """The address as written in RCPT TO (A-label domain; UTF-8 local part only with SMTPUTF8)."""
        return f"{self.local_part}@{self.ascii_domain}"

    @property
    def key(self) -> str:
        """Case-folded identity used for storage and de-duplication (mailboxes are case-insensitive in
        practice, and every major provider treats them so)."""
        return self.normalized.lower()


@dataclass(frozen=True)
class SyntaxProblem:
    original: str
    message: str


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode category Cc


def _control_character(text: str) -> str | None:
    match = _CONTROL.search(text)
    return match.group() if match else None


def parse_address(raw: object, *, test_environment: bool = False) -> ParsedAddress | SyntaxProblem:
    """Never raises on bad input: every problem comes back as a SyntaxProblem with a clear message."""
    if not isinstance(raw, str):
        return SyntaxProblem(repr(raw), f"not a string: {type(raw).__name__}")
    if not raw.strip():
        return SyntaxProblem(raw, "empty address")
    bad = _control_character(raw)
    if bad is not None:
        return SyntaxProblem(raw, f"address contains a control character (U+{ord(bad):04X})")
    if len(raw) > MAX_INPUT_CHARS:
        return SyntaxProblem(raw, f"address is {len(raw)} characters long; the limit is 254")
    try:
        valid = validate_email(
            raw.strip(),
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=False,  # quoted local parts are legal but only ever seen in abuse
            allow_domain_literal=False,
            allow_display_name=False,
            test_environment=test_environment,
        )
    except EmailNotValidError as exc:
        return SyntaxProblem(raw, str(exc))
    return ParsedAddress(
        original=raw,
        normalized=valid.normalized,
        local_part=valid.local_part,
        domain=valid.domain.lower(),
        ascii_domain=valid.ascii_domain.lower(),
        smtputf8=valid.smtputf8,
    )


def suggest_domain(domain: str) -> str | None:
    """A likely intended provider domain for a misspelt one (gmial.com -> gmail.com), else None."""
    domain = domain.lower()
    if domain in FREE_PROVIDERS or domain in _TYPO_TARGETS or len(domain) < 6:
        return None
    best: tuple[int, str] | None = None
    for target in _TYPO_TARGETS:
        # OSA counts a swap of neighbours (gmial/gmail) as one edit.
        distance = OSA.distance(domain, target, score_cutoff=2)
        if distance <= (2 if len(target) >= 12 else 1) and (best is None or distance < best[0]):
            best = (distance, target)
    return best[1] if best else None
