"""The result of verifying one address, its score, and its (de)serialised form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.verify.reasons import Reason
from core.verify.smtp import SmtpStep
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, EmailStatus
from storage.timeutil import as_utc

_BASE_SCORE = {
    EmailStatus.VERIFIED: 95,
    EmailStatus.LIKELY_TO_ENGAGE: 98,
    EmailStatus.ACCEPT_ALL: 50,
    EmailStatus.UNKNOWN: 30,
    EmailStatus.UNVERIFIED: 30,
    EmailStatus.UPDATE_REQUIRED: 10,
    EmailStatus.INVALID: 0,
    EmailStatus.UNAVAILABLE: 0,
}
# How much more (or less) likely an unknown is to be deliverable, by why it is unknown.
_UNKNOWN_ADJUST = {
    Reason.CATCH_ALL_UNDETERMINED: 15,
    Reason.GREYLISTED: 10,
    Reason.TEMPORARY: 5,
    Reason.FULL_INBOX: -10,
    Reason.DISPOSABLE: -20,
}
_ANNOTATION_ADJUST = {Reason.ROLE_BASED: -15, Reason.POSSIBLE_TYPO: -10, Reason.FREE_PROVIDER: -3}


def score_for(status: EmailStatus, reasons: tuple[str, ...]) -> int:
    """0-100: how likely a message to this address is delivered to a person."""
    score = _BASE_SCORE[status]
    if score == 0:
        return 0
    for reason in reasons:
        if status == EmailStatus.UNKNOWN:
            score += _UNKNOWN_ADJUST.get(reason, 0)  # type: ignore[call-overload]
        score += _ANNOTATION_ADJUST.get(reason, 0)  # type: ignore[call-overload]
    return max(0, min(100, score))


@dataclass(frozen=True)
class EmailResult:
    email: str  # exactly as given
    status: EmailStatus
    reasons: tuple[str, ...]
    score: int
    checked_at: datetime
    normalized: str | None = None
    mx_host: str | None = None
    evidence: tuple[SmtpStep, ...] = ()
    suggestion: str | None = None  # e.g. "ann@gmail.com" for "ann@gmial.com"
    detail: str | None = None  # one human-readable line: why
    catch_all: bool | None = None

    @property
    def chargeable(self) -> bool:
        return self.status in CHARGEABLE_EMAIL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "normalized": self.normalized,
            "status": str(self.status),
            "reasons": list(self.reasons),
            "score": self.score,
            "mx": self.mx_host,
            "checked_at": self.checked_at.isoformat(),
            "catch_all": self.catch_all,
            "suggestion": self.suggestion,
            "detail": self.detail,
            "evidence": [step.to_dict() for step in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmailResult:
        return cls(
            email=data["email"],
            normalized=data.get("normalized"),
            status=EmailStatus(data["status"]),
            reasons=tuple(data.get("reasons", ())),
            score=int(data["score"]),
            mx_host=data.get("mx"),
            checked_at=as_utc(datetime.fromisoformat(data["checked_at"])),
            catch_all=data.get("catch_all"),
            suggestion=data.get("suggestion"),
            detail=data.get("detail"),
            evidence=tuple(SmtpStep.from_dict(step) for step in data.get("evidence", ())),
        )
