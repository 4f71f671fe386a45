"""Email addresses: syntax normalisation with email-validator (no DNS), lower-cased, with the facts
that decide whether an address may be shared (free webmail and role accounts are not a person's
business address)."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from core.errors import InvalidInput
from core.verify.domain_facts import is_disposable, is_free_provider, is_role_account

MAX_EMAIL_LENGTH = 320


@dataclass(frozen=True)
class NormalizedEmail:
    address: str
    local_part: str
    domain: str  # ASCII (punycode) form
    free_provider: bool
    role_account: bool
    disposable: bool

    @property
    def business(self) -> bool:
        """A named person's company address: the only kind the contributor database shares."""
        return not (self.free_provider or self.role_account or self.disposable)


def normalize_email(text: str) -> NormalizedEmail:
    raw = text.strip()
    if len(raw) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email: longer than {MAX_EMAIL_LENGTH} characters")
    try:
        # test_environment admits the reserved `.test` TLD the demo world uses, as core/accounts does.
        info = validate_email(raw, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidInput(f"email: {raw[:80]!r} is not a valid address ({exc})") from exc
    domain = info.ascii_domain.lower()
    local = info.local_part.lower()
    return NormalizedEmail(
        address=f"{local}@{domain}",
        local_part=local,
        domain=domain,
        free_provider=is_free_provider(domain),
        role_account=is_role_account(local),
        disposable=is_disposable(domain),
    )
