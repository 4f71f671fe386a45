"""POST /emails/verify: up to 100 addresses verified (core.verify), priced per plan
(`plan.price_verify_credits`, default 1) for each DEFINITIVE answer only: every status but
`unknown` (greylisted for good, timeouts, servers refusing us) costs; unknown is free.

Two-phase, so nothing is revealed unpaid: the worst case (price x distinct addresses) is held
first (402 if the wallet cannot), the verification runs, then exactly the definitive answers are
posted from the hold and the rest released. An address given twice in one call is verified and
charged once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.api.keys import ApiCaller
from core.errors import InvalidInput
from core.ledger import Ledger, UsageMeta
from core.verify.pipeline import EmailVerifier
from core.verify.result import EmailResult
from storage.limits import MAX_TEXT_CHARS
from storage.models.enums import Category, EmailStatus, Feature

MAX_VERIFY_EMAILS = 100
MAX_EMAIL_CHARS = 320
VERIFY_HOLD_TIMEOUT_S = 600


@dataclass(frozen=True)
class VerifyAnswer:
    results: list[EmailResult]  # one per address given, in order
    charged: list[bool]  # whether that item was charged (first occurrence of a definitive answer)
    credits_charged: int
    price_credits: int


def definitive(result: EmailResult) -> bool:
    return result.status != EmailStatus.UNKNOWN


def verify_emails(ledger: Ledger, verifier: EmailVerifier, caller: ApiCaller, emails: list[str]) -> VerifyAnswer:
    if not emails or len(emails) > MAX_VERIFY_EMAILS:
        raise InvalidInput(f"emails: give 1 to {MAX_VERIFY_EMAILS} addresses")
    for i, email in enumerate(emails):
        if not email.strip() or len(email) > MAX_EMAIL_CHARS:
            raise InvalidInput(f"emails.{i}: give an address of at most {MAX_EMAIL_CHARS} characters")
    distinct = list(dict.fromkeys(emails))
    price = caller.price_verify_credits
    meta = UsageMeta(
        category=Category.API,
        feature=Feature.API,
        member_id=caller.member.id,
        action="verify_email",
        description=f"Verified {len(distinct)} address(es) through the API"[:MAX_TEXT_CHARS],
    )
    call = uuid.uuid4().hex
    team_id = caller.team.id
    hold = ledger.hold(team_id, price * len(distinct), key=f"api-verify:{call}:hold",
                       timeout_s=VERIFY_HOLD_TIMEOUT_S, meta=meta) if price else None
    try:
        by_email = dict(zip(distinct, verifier.verify_many_sync(distinct), strict=True))
    except BaseException:
        if hold is not None:
            ledger.void(team_id, hold.id, key=f"api-verify:{call}:void")
        raise
    paid = [e for e in distinct if definitive(by_email[e])]
    credits = price * len(paid)
    if hold is not None:
        if credits:
            ledger.post(team_id, hold.id, credits, key=f"api-verify:{call}:post", close=True, meta=meta)
        else:
            ledger.void(team_id, hold.id, key=f"api-verify:{call}:void")
    first_seen: set[str] = set()
    charged = []
    for email in emails:
        charged.append(bool(price) and definitive(by_email[email]) and email not in first_seen)
        first_seen.add(email)
    return VerifyAnswer([by_email[e] for e in emails], charged, credits, price)
