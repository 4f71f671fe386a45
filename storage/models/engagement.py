"""Engagement evidence about shared email addresses: replies to our sends, and bounce-free deliveries.

Shared (no team id, no member id, no send id): EmailEngagement says only that an address replied
(or took a delivery) on some days, so it cannot be joined back to the team whose send it was. The
day, not the instant, is kept for the same reason as ContributionObservation's.
"""

from datetime import date

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class EmailEngagement(SQLModel, table=True):
    __tablename__ = "email_engagement"
    __table_args__ = (UniqueConstraint("address", "kind", name="uq_email_engagement_address_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320, index=True)  # lower-cased, an address of the shared email table
    kind: str = Field(max_length=16)  # EngagementKind: reply | delivered
    first_seen_on: date
    last_seen_on: date
    times: int = 1
