"""The contact tables as a source: the contributor database behind every lookup."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, case, select

from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from storage.db import read_transaction
from storage.models import EmailAddress, Phone
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import as_utc

_E = EmailAddress.__table__
_P = Phone.__table__

# Best email first: the statuses a customer would rather have, then the most confident.
_EMAIL_RANK = case(
    (_E.c.status == EmailStatus.LIKELY_TO_ENGAGE.value, 0),
    (_E.c.status == EmailStatus.VERIFIED.value, 1),
    (_E.c.status == EmailStatus.ACCEPT_ALL.value, 2),
    (_E.c.status == EmailStatus.UNVERIFIED.value, 3),
    (_E.c.status == EmailStatus.UNKNOWN.value, 4),
    (_E.c.status == EmailStatus.UPDATE_REQUIRED.value, 5),
    else_=6,
)


class DatabaseSource:
    name = "database"
    cost_per_hit_usd = Decimal(0)
    rate_limit_per_s: float | None = None
    timeout_s = 30.0  # a local query; only a locked or overloaded database gets near this

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(_E)
                .where(_E.c.person_id == person.id, _E.c.status != EmailStatus.INVALID.value)
                .order_by(_EMAIL_RANK, _E.c.score.desc(), _E.c.id)
                .limit(1)
            ).one_or_none()
        if row is None:
            return None
        return EmailFinding(
            address=row.address,
            status=EmailStatus(row.status),
            score=row.score,
            checked_at=as_utc(row.checked_at) if row.checked_at else None,
            source=self.name,
        )

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_P).where(_P.c.person_id == person.id).order_by(_P.c.id)).all()
        return [
            PhoneFinding(
                e164=row.e164,
                kind=PhoneKind(row.kind),
                status=PhoneStatus(row.status),
                line_type=row.line_type,
                source=self.name,
            )
            for row in rows
        ]
