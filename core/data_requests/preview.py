"""What a team may see of a person before paying: firmographics, the email's status (not the address)
and whether a mobile is on file; plus what the team already accessed, which it sees in full.

Reads the contributor database only (never a paid provider), so a preview is free and fast.
A lookup *by email address* never shows that address's status to a team that has not accessed it:
otherwise guessing addresses and looking them up would be a free verification service.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Engine, select

from core.people.lookup import LookupQuery
from core.people.types import EmailFinding, PersonInfo
from core.sources.database import DatabaseSource
from storage.db import read_transaction
from storage.models import DataRequest
from storage.models.enums import DataKind, DataRequestStatus, EmailStatus, PhoneKind

_DR = DataRequest.__table__
_SETTLED = (DataRequestStatus.CHARGED.value, DataRequestStatus.FREE.value)


@dataclass(frozen=True)
class PersonPreview:
    person: PersonInfo
    email_status: EmailStatus | None  # the best email on file; None when there is none
    mobile_available: bool
    # What the team already has (free to see again): None / empty when not accessed yet.
    accessed_email: EmailFinding | None
    accessed_office_phone: str | None
    accessed_mobiles: tuple[str, ...]
    email_accessed: bool
    mobile_accessed: bool
    # True when an email is on file but its status is withheld until the team accesses it.
    email_status_hidden: bool = False


class PersonPreviews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.source = DatabaseSource(engine)

    def preview(self, team_id: int, person: PersonInfo) -> PersonPreview:
        email = self.source.find_email(person)
        phones = self.source.find_phones(person)
        with read_transaction(self.engine) as conn:
            rows = {
                r.kind: r
                for r in conn.execute(
                    select(_DR).where(
                        _DR.c.team_id == team_id, _DR.c.person_id == person.id, _DR.c.status.in_(_SETTLED)
                    )
                )
            }
        email_row = rows.get(DataKind.EMAIL.value)
        mobile_row = rows.get(DataKind.MOBILE.value)
        accessed_email = None
        if email_row is not None and email_row.email_address:
            accessed_email = EmailFinding(
                email_row.email_address, EmailStatus(email_row.email_status), 0, None, "record"
            )
        return PersonPreview(
            person=person,
            email_status=email.status if email else None,
            mobile_available=any(p.kind == PhoneKind.MOBILE for p in phones),
            accessed_email=accessed_email,
            accessed_office_phone=email_row.office_phone if email_row is not None else None,
            accessed_mobiles=tuple(mobile_row.mobile_phones or ()) if mobile_row is not None else (),
            email_accessed=email_row is not None,
            mobile_accessed=mobile_row is not None,
        )

    def for_lookup(self, team_id: int, query: LookupQuery, person: PersonInfo) -> PersonPreview:
        """The preview a lookup shows: by email address, the status stays hidden until accessed."""
        preview = self.preview(team_id, person)
        if not names_an_email(query) or preview.email_accessed or preview.email_status is None:
            return preview
        return replace(preview, email_status=None, email_status_hidden=True)


def names_an_email(query: LookupQuery) -> bool:
    return bool(query.ref) and "@" in (query.ref or "")


__all__ = ["PersonPreview", "PersonPreviews", "names_an_email"]
