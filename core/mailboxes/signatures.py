"""Read a sender's signature block: name, title, company, phones, website, LinkedIn URL.

No maintained library does this: talon (Mailgun) has had no release since 2017 and needs a trained
classifier; mail-parser-reply only splits replies. So a small parser: cut the quoted history, take
the block after a "-- " delimiter or a sign-off ("Best regards,"), and read its first lines. The
block is trusted only when its name line is the sender's display name, so facts are never pinned
on the wrong person. The text is read here and dropped; nothing of it is stored but the facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers

from core.errors import InvalidInput
from core.normalize.domains import registrable_domain
from core.normalize.names import parse_name

MAX_SIGNATURE_SCAN_CHARS = 8_000  # of the newest reply's text; signatures sit at its end
MAX_SIGNATURE_LINES = 8
MAX_SIGNOFF_DISTANCE_LINES = 12  # a sign-off further than this from the end is body text
MAX_PHONES_PER_SIGNATURE = 3
MAX_LINE_CHARS = 160

_QUOTE_START = re.compile(
    r"^(>|On .{0,200} wrote:\s*$|-{2,}\s*Original Message\s*-{2,}|_{10,}|From:\s|Sent from my )",
    re.IGNORECASE,
)
_DELIMITER = re.compile(r"^--\s?$")
_SIGNOFF = re.compile(
    r"^(best|kind|warm|warmest|many)?\s*(regards|wishes|thanks|thank you|cheers|sincerely|best|"
    r"all the best|talk soon|speak soon)\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_URL = re.compile(r"(?<![@\w.])((?:https?://)?(?:www\.)?[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+(?:/[^\s|]*)?)", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MOBILE_LABEL = re.compile(r"\b(m|mob|mobile|cell|c)\b\s*[:.]", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s+(?:\||·|•|–|—|-|@|at)\s+|,\s+")
_TITLE_WORDS = re.compile(
    r"\b(ceo|cto|cfo|coo|cmo|cro|vp|svp|evp|president|founder|co-founder|owner|partner|director|head|"
    r"manager|lead|engineer|developer|architect|designer|analyst|consultant|specialist|officer|"
    r"executive|representative|rep|associate|coordinator|administrator|recruiter|counsel|"
    r"scientist|researcher|marketing|sales|operations|account|product|chief|principal|senior|"
    r"junior|intern|advisor|strategist|buyer|controller|accountant|attorney|editor)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SignaturePhone:
    e164: str
    mobile_labelled: bool  # written after "m:", "mobile", "cell"


@dataclass(frozen=True)
class Signature:
    full_name: str
    title: str | None = None
    company: str | None = None
    website: str | None = None  # a registrable domain
    linkedin_url: str | None = None
    phones: tuple[SignaturePhone, ...] = field(default_factory=tuple)


def newest_reply(text: str) -> str:
    """The text above the quoted history, at most MAX_SIGNATURE_SCAN_CHARS."""
    lines = []
    for line in text[: MAX_SIGNATURE_SCAN_CHARS * 2].splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        lines.append(line.rstrip())
    return "\n".join(lines)[-MAX_SIGNATURE_SCAN_CHARS:]


def signature_block(text: str) -> list[str]:
    """The lines of the signature block of the newest reply, or [] when there is none."""
    lines = newest_reply(text).splitlines()
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if _DELIMITER.match(lines[i]):
            start = i + 1
            break
    if start is None:
        for i in range(len(lines) - 1, max(-1, len(lines) - 1 - MAX_SIGNOFF_DISTANCE_LINES), -1):
            if _SIGNOFF.match(lines[i].strip()):
                start = i + 1
                break
    if start is None:
        return []
    block = [line.strip() for line in lines[start:] if line.strip()]
    return [line[:MAX_LINE_CHARS] for line in block[:MAX_SIGNATURE_LINES]]


def parse_signature(text: str, sender_name: str | None, region: str = "US") -> Signature | None:
    """The signature of the sender `sender_name` in `text`, or None when there is no block or its
    name line is not the sender's name."""
    block = signature_block(text)
    if not block or not sender_name:
        return None
    wanted = parse_name(sender_name, None, None)
    if not (wanted.first_key and wanted.last_key):
        return None
    name_at = _name_line(block, wanted.first_key, wanted.last_key)
    if name_at is None:
        return None
    name_line, tail = _split_name_line(block[name_at])
    rest = ([tail] if tail else []) + block[name_at + 1 :]
    phones = _phones(rest, region)
    website, linkedin = _links(rest)
    title, company = _title_company([line for line in rest if _is_text_line(line)])
    return Signature(
        full_name=name_line,
        title=title,
        company=company,
        website=website,
        linkedin_url=linkedin,
        phones=phones,
    )


def _split_name_line(line: str) -> tuple[str, str]:
    """'Priya Raman, Senior AE at Globex' -> ('Priya Raman', 'Senior AE at Globex')."""
    cut = min((i for i in (line.find(","), line.find("|")) if i >= 0), default=-1)
    if cut < 0:
        return line.strip(), ""
    return line[:cut].strip(), line[cut + 1 :].strip()


def _name_line(block: list[str], first_key: str, last_key: str) -> int | None:
    for i, line in enumerate(block[:3]):
        parsed = parse_name(line.split(",")[0].split("|")[0], None, None)
        if parsed.first_key == first_key and parsed.last_key == last_key:
            return i
    return None


def _is_text_line(line: str) -> bool:
    """A line that is neither contact details nor a link (title and company live on these)."""
    if _EMAIL.search(line) or _URL.fullmatch(line.strip()) or "linkedin.com" in line.lower():
        return False
    digits = sum(c.isdigit() for c in line)
    return digits < 5


def _phones(lines: list[str], region: str) -> tuple[SignaturePhone, ...]:
    found: dict[str, SignaturePhone] = {}
    for line in lines:
        for match in phonenumbers.PhoneNumberMatcher(line, region):
            if not phonenumbers.is_valid_number(match.number):
                continue
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            labelled = bool(_MOBILE_LABEL.search(line[: match.start]))
            found.setdefault(e164, SignaturePhone(e164, labelled))
    return tuple(found.values())[:MAX_PHONES_PER_SIGNATURE]


def _links(lines: list[str]) -> tuple[str | None, str | None]:
    website = linkedin = None
    for line in lines:
        for raw in _URL.findall(_EMAIL.sub(" ", line)):
            lowered = raw.lower()
            if "linkedin.com/in/" in lowered:
                linkedin = linkedin or (raw if lowered.startswith("http") else f"https://{raw}")
            elif website is None and "linkedin.com" not in lowered:
                website = safe_domain(raw)
    return website, linkedin


def safe_domain(text: str) -> str | None:
    """The registrable domain of a host or URL, or None when it has none (a typo, a bare word)."""
    try:
        return registrable_domain(text)
    except InvalidInput:
        return None


def _title_company(lines: list[str]) -> tuple[str | None, str | None]:
    """'VP Sales | Acme', 'VP Sales, Acme', 'VP Sales at Acme', or a title line then a company line."""
    if not lines:
        return None, None
    first = lines[0]
    parts = [p.strip() for p in _SEPARATORS.split(first) if p and p.strip()]
    if len(parts) >= 2 and _TITLE_WORDS.search(parts[0]) and not _TITLE_WORDS.search(parts[-1]):
        return ", ".join(parts[:-1]), parts[-1]
    if _TITLE_WORDS.search(first):
        company = lines[1] if len(lines) > 1 and not _TITLE_WORDS.search(lines[1]) else None
        return first, company
    return None, first if len(lines) == 1 else None


__all__ = ["Signature", "SignaturePhone", "newest_reply", "parse_signature", "signature_block"]
