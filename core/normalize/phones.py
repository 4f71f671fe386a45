"""Phone numbers in E.164 form, through the phone verifier (libphonenumber)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput
from core.verify.phone import verify_phone
from storage.models.enums import PhoneKind, PhoneStatus


@dataclass(frozen=True)
class NormalizedPhone:
    e164: str
    kind: PhoneKind
    line_type: str | None


def normalize_phone(text: str, default_region: str | None = None) -> NormalizedPhone:
    """Raises InvalidInput unless the number is valid for its country (an unknown region counts as
    not valid: we cannot store an E.164 form we had to guess)."""
    result = verify_phone(text, default_region)
    if result.status is not PhoneStatus.VALID or result.e164 is None or result.kind is None:
        raise InvalidInput(f"phone: {text.strip()[:40]!r} is not a valid number ({result.detail or result.reason})")
    return NormalizedPhone(
        e164=result.e164, kind=result.kind, line_type=None if result.line_type is None else str(result.line_type)
    )
