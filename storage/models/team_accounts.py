"""A team's accounts: the companies of its contacts, each with an owner, the date saved and a source."""

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class TeamAccount(SQLModel, table=True):
    """A company a team has saved a contact at. Its id in every front end is the company's id (the
    `account_id` contacts carry); this row holds what is the team's own: owner, source, date saved.
    The (team, ..., created_at, id) indexes serve keyset pages."""

    __tablename__ = "team_account"
    __table_args__ = (
        UniqueConstraint("team_id", "company_id", name="uq_team_account_team_company"),
        Index("ix_team_account_team_saved", "team_id", "created_at", "id"),
        Index("ix_team_account_team_owner_saved", "team_id", "owner_member_id", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    company_id: int = Field(foreign_key="company.id")
    created_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    owner_member_id: int | None = Field(default=None, foreign_key="member.id")
    source: str = Field(default="cli", max_length=16)  # ContactSource of the contact that brought it
    created_at: datetime = Field(default_factory=utcnow)
