"""Job changes: where a person worked when (shared), and which team contacts were told (team-private).

Shared (no team id): EmploymentHistory, one row per stint of a person at a company, written only
when corroborated observations moved the person (core/contributions.py).
Team-private: JobChangeNotice, one row per (team contact, stint) once the contact's owner was told,
which is what makes the notice go out once per change however often detection runs.
"""

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class EmploymentHistory(SQLModel, table=True):
    __tablename__ = "employment_history"
    __table_args__ = (Index("ix_employment_history_person_from", "person_id", "from_on"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    company_id: int = Field(foreign_key="company.id")
    from_on: date | None = None  # None: started before Tributary knew (the first known employer)
    to_on: date | None = None  # None: current
    evidence: str = Field(max_length=32)  # JobEvidence: two_sources | verified_email | first_known
    recorded_at: datetime = Field(default_factory=utcnow)


class JobChangeNotice(SQLModel, table=True):
    __tablename__ = "job_change_notice"
    __table_args__ = (
        UniqueConstraint("team_contact_id", "employment_id", name="uq_job_change_notice_contact_stint"),
        Index("ix_job_change_notice_team_created", "team_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    team_contact_id: int = Field(foreign_key="team_contact.id")
    employment_id: int = Field(foreign_key="employment_history.id")
    member_id: int | None = Field(default=None, foreign_key="member.id")  # the owner told (None: no owner)
    outbox_notice_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
