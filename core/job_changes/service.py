"""JobChanges, the service: detection as an idempotent sweep, a team's changes, the digest's summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, and_, func, select

from core.accounts import Accounts
from core.errors import InvalidInput
from core.job_changes.history import JobEvidence
from core.job_changes.notices import notify_in
from storage.db import read_transaction, run_write
from storage.models import Company, EmploymentHistory, JobChangeNotice, Member, Person, TeamContact
from storage.timeutil import as_utc, utcnow

_H = EmploymentHistory.__table__
_N = JobChangeNotice.__table__
_TC = TeamContact.__table__
_C = Company.__table__
_P = Person.__table__
_M = Member.__table__

DETECT_LOOKBACK_DAYS = 365  # a sweep re-examines moves recorded this recently
DETECT_BATCH = 200
MAX_CHANGES_LISTED = 1000
DIGEST_NAMES = 5


@dataclass(frozen=True)
class JobChange:
    """A team contact whose person moved after the team saved them (the live "job change" flag)."""

    team_contact_id: int
    person_id: int
    full_name: str
    old_company: str | None
    new_company: str
    new_domain: str | None
    changed_on: date
    evidence: JobEvidence
    owner_email: str | None
    notified: bool  # the owner (or saver) has a notice for it


@dataclass(frozen=True)
class JobChangeSummary:
    count: int  # job changes of the team's contacts recorded in the period
    names: tuple[str, ...]  # a few of them, most recent first: "Jane Doe (Acme -> Globex)"


class JobChanges:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    def detect(self, now: datetime | None = None, *, lookback_days: int = DETECT_LOOKBACK_DAYS) -> int:
        """Tell every team contact's owner of each recent move not yet told (moves notify as they are
        recorded; this catches anything that was not). Idempotent. Returns notices created."""
        now = as_utc(now or utcnow())
        with read_transaction(self.engine) as conn:
            stints = list(
                conn.execute(
                    select(_H.c.id)
                    .where(_H.c.from_on.is_not(None), _H.c.recorded_at >= now - timedelta(days=lookback_days))
                    .order_by(_H.c.id)
                ).scalars()
            )
        told = 0
        for start in range(0, len(stints), DETECT_BATCH):
            batch = stints[start : start + DETECT_BATCH]
            told += run_write(self.engine, lambda conn, b=batch: sum(notify_in(conn, s, now) for s in b))
        return told

    def changes(
        self, team_ref: int | str, *, since: date | None = None, limit: int = MAX_CHANGES_LISTED
    ) -> list[JobChange]:
        """The team's contacts flagged "job change", most recent move first; `since`: moved on or after."""
        if not 1 <= limit <= MAX_CHANGES_LISTED:
            raise InvalidInput(f"limit: must be between 1 and {MAX_CHANGES_LISTED}")
        team = self.accounts.team(team_ref)
        stmt = _changes_query(team.id).order_by(_H.c.from_on.desc(), _TC.c.id).limit(limit)
        if since is not None:
            stmt = stmt.where(_H.c.from_on >= since)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [
            JobChange(
                team_contact_id=r.contact_id,
                person_id=r.person_id,
                full_name=r.full_name,
                old_company=r.old_company,
                new_company=r.new_company,
                new_domain=r.new_domain,
                changed_on=r.from_on,
                evidence=JobEvidence(r.evidence),
                owner_email=r.owner_email,
                notified=r.notice_id is not None,
            )
            for r in rows
        ]

    def summary(self, team_id: int, start: datetime, end: datetime) -> JobChangeSummary:
        """Job changes of the team's contacts recorded in [start, end): the usage digest's section."""
        base = _changes_query(team_id).where(_H.c.recorded_at >= start, _H.c.recorded_at < end)
        with read_transaction(self.engine) as conn:
            count = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
            rows = conn.execute(base.order_by(_H.c.recorded_at.desc(), _TC.c.id).limit(DIGEST_NAMES)).all()
        return JobChangeSummary(count, tuple(_label(r.full_name, r.old_company, r.new_company) for r in rows))


def _label(name: str, old: str | None, new: str) -> str:
    return f"{name} ({old} -> {new})" if old else f"{name} (now at {new})"


def _changes_query(team_id: int):
    prev = _H.alias("prev")
    old_company = (
        select(_C.c.name)
        .select_from(prev.join(_C, _C.c.id == prev.c.company_id))
        .where(prev.c.person_id == _H.c.person_id, prev.c.id != _H.c.id, prev.c.to_on.is_not(None))
        .order_by(prev.c.to_on.desc(), prev.c.id.desc())
        .limit(1)
        .correlate(_H)
        .scalar_subquery()
    )
    return (
        select(
            _TC.c.id.label("contact_id"),
            _TC.c.person_id,
            _P.c.full_name,
            old_company.label("old_company"),
            _C.c.name.label("new_company"),
            _C.c.domain.label("new_domain"),
            _H.c.from_on,
            _H.c.evidence,
            _M.c.email.label("owner_email"),
            _N.c.id.label("notice_id"),
        )
        .select_from(_TC)
        .join(_H, and_(_H.c.person_id == _TC.c.person_id, _H.c.to_on.is_(None), _H.c.from_on.is_not(None)))
        .join(_P, _P.c.id == _TC.c.person_id)
        .join(_C, _C.c.id == _H.c.company_id)
        .outerjoin(_M, _M.c.id == _TC.c.owner_member_id)
        .outerjoin(_N, and_(_N.c.team_contact_id == _TC.c.id, _N.c.employment_id == _H.c.id))
        .where(_TC.c.team_id == team_id, _H.c.recorded_at >= _TC.c.created_at)
    )


__all__ = ["JobChange", "JobChangeSummary", "JobChanges"]
