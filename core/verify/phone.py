"""Phone number verification with libphonenumber (the `phonenumbers` package).

What "valid" means here: the number fits the numbering plan of its country as libphonenumber's
metadata knows it. Nothing is dialled, so a valid number may be unassigned, disconnected or ported;
every result says so (`liveness_checked` is always False).

Decisions (documented because data requests depend on them):

* Status
  - `valid`: parses and `phonenumbers.is_valid_number` is true.
  - `invalid`: the input is not a phone number (empty, too long, letters, control characters,
    unparseable), or it parses but is not valid for its country (wrong length, unassigned range).
  - `unknown`: the digits look like a plausible national number but there is no region to read
    them in (no `+` country code and no default region). The number may well be good; we cannot
    tell which country's plan applies, so we refuse to call it invalid. Give a default region (the
    company's country) or an international `+CC` form to get a definite answer.
* Kind (for the mobile/office rules of data requests)
  - `mobile` line type -> `mobile`; every other valid line type -> `office` (fixed lines,
    toll-free, shared-cost, UAN, VoIP, ... reach a desk or a company, not a person's handset).
  - `fixed_line_or_mobile` is what libphonenumber reports where the numbering plan does not tell
    the two apart (the whole of NANP: US, Canada, ...). There the caller's `kind_hint` (the label the
    data source gave the number) decides; without a hint the number is `office`, because a mobile
    access costs credits and we never charge the mobile price on a guess. `kind_basis` records
    which of the three ("line_type", "hint", "default") decided, so a caller can tell a guess.
  - invalid and unknown numbers have no kind (`None`).
* Extensions: letters are rejected, except a trailing extension marker ("ext. 12", "x12", "#12"),
  which office numbers often carry; the extension is kept in the result.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from core.errors import InvalidInput
from storage.models.enums import PhoneKind, PhoneStatus

MAX_INPUT_LENGTH = 64
LIVENESS_NOTE = (
    "validity is not liveness: the number fits its country's numbering plan, but it was not dialled "
    "and may be unassigned, disconnected or ported"
)

# A plausible national significant number without its country code. ITU-T E.164 allows at most 15
# digits including the country code; below 6 digits a number is a short code or a typo.
_MIN_PLAUSIBLE_DIGITS = 6
_MAX_PLAUSIBLE_DIGITS = 15

# Characters people write in phone numbers. Anything else (letters aside from an extension marker)
# means the field holds something other than a phone number.
_ALLOWED_CHARS = re.compile(r"[0-9+()\-./\s\u00a0]*")
_EXTENSION = re.compile(r"\s*(?:[,;]\s*)?(?:ext\.?|extension|x|#)\s*(\d{1,10})\s*$", re.IGNORECASE)

# The ISO 3166 code is GB; "UK" is what people type.
_REGION_ALIASES = {"UK": "GB"}


class LineType(StrEnum):
    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    VOIP = "voip"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_LINE_TYPES: dict[int, LineType] = {
    PhoneNumberType.MOBILE: LineType.MOBILE,
    PhoneNumberType.FIXED_LINE: LineType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: LineType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.VOIP: LineType.VOIP,
    PhoneNumberType.TOLL_FREE: LineType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: LineType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: LineType.SHARED_COST,
    PhoneNumberType.PERSONAL_NUMBER: LineType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER: LineType.PAGER,
    PhoneNumberType.UAN: LineType.UAN,
    PhoneNumberType.VOICEMAIL: LineType.VOICEMAIL,
    PhoneNumberType.UNKNOWN: LineType.UNKNOWN,
}

# Reasons are stable codes (stored, compared in tests); `detail` carries the human sentence.
_PARSE_REASONS: dict[int, tuple[str, str]] = {
    NumberParseException.INVALID_COUNTRY_CODE: ("invalid_country_code", "no known country calling code"),
    NumberParseException.NOT_A_NUMBER: ("not_a_number", "does not look like a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too_short", "too short after the international prefix"),
    NumberParseException.TOO_SHORT_NSN: ("too_short", "too short to be a phone number"),
    NumberParseException.TOO_LONG: ("too_long", "too long to be a phone number"),
}


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """The verdict on one input. `liveness_checked` is always False: see LIVENESS_NOTE."""

    input: str
    status: PhoneStatus
    reason: str | None = None  # stable code when not valid, e.g. "not_a_number", "region_unknown"
    detail: str | None = None  # a sentence for people
    e164: str | None = None  # only for valid numbers: an invalid one has no meaningful E.164 form
    international: str | None = None  # display form, e.g. "+44 7400 123456"
    extension: str | None = None
    region: str | None = None  # ISO 3166 alpha-2; "001" for non-geographic numbers (+800, +882, ...)
    country_code: int | None = None
    line_type: LineType | None = None
    carrier: str | None = None  # the carrier the range was allocated to; the number may be ported
    kind: PhoneKind | None = None
    kind_basis: Literal["line_type", "hint", "default"] | None = None
    liveness_checked: Literal[False] = False
    note: str = LIVENESS_NOTE

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (enums as strings)."""
        return {
            "number": self.input,
            "e164": self.e164,
            "status": str(self.status),
            "reason": self.reason,
            "detail": self.detail,
            "line_type": None if self.line_type is None else str(self.line_type),
            "region": self.region,
            "country_code": self.country_code,
            "carrier": self.carrier,
            "kind": None if self.kind is None else str(self.kind),
            "kind_basis": self.kind_basis,
            "international": self.international,
            "extension": self.extension,
            "liveness_checked": self.liveness_checked,
            "note": self.note,
        }


def normalise_region(region: str | None) -> str | None:
    """Check a default region (ISO 3166 alpha-2, e.g. a company's country) and return it upper-case.

    Raises InvalidInput for a code libphonenumber does not know: that is a caller's mistake for a
    whole batch, not a property of one number.
    """
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    code = _REGION_ALIASES.get(code, code)
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"unknown region code {region!r}: expected an ISO 3166 alpha-2 code such as US, GB, DE")
    return code


def verify_phone(
    number: str, default_region: str | None = None, *, kind_hint: PhoneKind | str | None = None
) -> PhoneResult:
    """Verify one number. `default_region` is used for numbers written without `+CC`.

    Never raises for a bad number (the result is invalid with a reason); raises InvalidInput only for
    an unknown `default_region` or `kind_hint`.
    """
    region = normalise_region(default_region)
    hint = PhoneKind(kind_hint) if kind_hint is not None else None
    return _verify(number, region, hint)


def verify_phones(
    numbers: Iterable[object], default_region: str | None = None, *, kind_hint: PhoneKind | str | None = None
) -> list[PhoneResult]:
    """Verify a batch, one result per input in input order. A bad item is an invalid result with a
    reason; it never stops the batch. Only an unknown `default_region` raises (before any work)."""
    region = normalise_region(default_region)
    hint = PhoneKind(kind_hint) if kind_hint is not None else None
    return [_verify(item, region, hint) for item in numbers]


def _invalid(raw: str, reason: str, detail: str, status: PhoneStatus = PhoneStatus.INVALID) -> PhoneResult:
    return PhoneResult(input=raw, status=status, reason=reason, detail=detail)


def _verify(number: object, region: str | None, hint: PhoneKind | None) -> PhoneResult:
    if not isinstance(number, str):
        return _invalid(repr(number), "not_a_string", f"expected text, got {type(number).__name__}")
    raw = number
    refused = _refuse_raw(raw)
    if refused is not None:
        return refused
    split = _number_and_extension(raw)
    if isinstance(split, PhoneResult):
        return split
    text, extension = split
    international = text.lstrip().startswith("+")
    if region is None and not international:
        return _without_region(raw, text)
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason, detail = _PARSE_REASONS.get(exc.error_type, ("not_a_number", str(exc)))
        return _invalid(raw, reason, detail)
    if not phonenumbers.is_valid_number(parsed):
        return _invalid_number(raw, parsed, extension)
    return _valid_number(raw, parsed, extension, hint)


def _refuse_raw(raw: str) -> PhoneResult | None:
    """An invalid result for input that is no number at all before any parsing, else None."""
    if not raw.strip():
        return _invalid(raw, "empty", "no number given")
    if len(raw) > MAX_INPUT_LENGTH:
        return _invalid(raw, "too_long", f"longer than {MAX_INPUT_LENGTH} characters")
    # Control characters (CR/LF, NUL, ...) signal injection or a broken import; refuse outright
    # rather than let phonenumbers skip over them.
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in " \t" for ch in raw):
        return _invalid(raw, "control_characters", "contains control characters")
    return None


def _number_and_extension(raw: str) -> tuple[str, str | None] | PhoneResult:
    """The number's text and its extension, or an invalid result for characters no number has."""
    text = raw.strip()
    extension: str | None = None
    match = _EXTENSION.search(text)
    if match:
        extension = match.group(1)
        text = text[: match.start()]
    # Letters would be read as a vanity number by phonenumbers (1-800-FLOWERS); in contact data they
    # mean a wrong column or a note, so they are refused.
    if not _ALLOWED_CHARS.fullmatch(text):
        if any(ch.isalpha() for ch in text):
            return _invalid(raw, "letters", "contains letters")
        return _invalid(raw, "not_a_number", "contains characters that are not part of a phone number")
    if not any(ch.isdigit() for ch in text):
        return _invalid(raw, "not_a_number", "contains no digits")
    return text, extension


def _without_region(raw: str, text: str) -> PhoneResult:
    # No country to read the digits in. Plausible digit strings are "unknown", not invalid.
    digits = sum(ch.isdigit() for ch in text)
    if _MIN_PLAUSIBLE_DIGITS <= digits <= _MAX_PLAUSIBLE_DIGITS:
        return _invalid(
            raw,
            "region_unknown",
            "no country code and no default region: give +CC or a region to check it",
            PhoneStatus.UNKNOWN,
        )
    return _invalid(raw, "too_short" if digits < _MIN_PLAUSIBLE_DIGITS else "too_long", "implausible length")


def _invalid_number(raw: str, parsed: phonenumbers.PhoneNumber, extension: str | None) -> PhoneResult:
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == phonenumbers.ValidationResult.TOO_SHORT:
        reason, detail = "too_short", "too short for its country"
    elif possible == phonenumbers.ValidationResult.TOO_LONG:
        reason, detail = "too_long", "too long for its country"
    elif possible == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        reason, detail = "invalid_country_code", "no known country calling code"
    else:
        reason, detail = "not_valid_for_region", "not an allocated number range in its country"
    return PhoneResult(
        input=raw,
        status=PhoneStatus.INVALID,
        reason=reason,
        detail=detail,
        extension=extension,
        region=phonenumbers.region_code_for_number(parsed),
        country_code=parsed.country_code,
    )


def _valid_number(
    raw: str, parsed: phonenumbers.PhoneNumber, extension: str | None, hint: PhoneKind | None
) -> PhoneResult:
    line_type = _LINE_TYPES.get(phonenumbers.number_type(parsed), LineType.UNKNOWN)
    kind, basis = _kind(line_type, hint)
    # Imported on first use: its prefix tables are ~10 MB that a process never verifying a phone skips.
    from phonenumbers import carrier

    # carrier.name_for_number answers only for mobile-capable ranges; "" means not known.
    carrier_name = carrier.name_for_number(parsed, "en") or None
    return PhoneResult(
        input=raw,
        status=PhoneStatus.VALID,
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        international=phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL),
        extension=extension or parsed.extension or None,
        region=phonenumbers.region_code_for_number(parsed),
        country_code=parsed.country_code,
        line_type=line_type,
        carrier=carrier_name,
        kind=kind,
        kind_basis=basis,
    )


def _kind(line_type: LineType, hint: PhoneKind | None) -> tuple[PhoneKind, Literal["line_type", "hint", "default"]]:
    if line_type is LineType.MOBILE:
        return PhoneKind.MOBILE, "line_type"
    if line_type in (LineType.FIXED_LINE_OR_MOBILE, LineType.UNKNOWN):
        if hint is not None:
            return hint, "hint"
        # Never the mobile price on a guess (see the module docstring).
        return PhoneKind.OFFICE, "default"
    return PhoneKind.OFFICE, "line_type"
