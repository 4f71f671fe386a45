"""Which member a verified Google user is: the member with that email (optionally only in teams whose
Google Workspace domain matches the token's `hd`), remembered by the Google subject once known."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, MemberInfo, TeamInfo, normalise_member_email
from core.actors import Actor, Channel
from core.errors import InvalidInput, NotAMember
from storage.db import is_sqlite, read_transaction, run_write
from storage.limits import MAX_NAME_CHARS
from storage.models import Member, SheetsTeamDomain
from storage.models.sheets import MAX_DOMAIN_CHARS
from storage.timeutil import utcnow

_MEMBER = Member.__table__
_DOMAIN = SheetsTeamDomain.__table__
_DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class GoogleAccount:
    """What a verified Google ID token says (the front end verifies it; core trusts only this)."""

    email: str
    subject: str
    hosted_domain: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class SheetsCaller:
    actor: Actor
    team: TeamInfo
    member: MemberInfo
    account: GoogleAccount


def not_a_member(email: str) -> str:
    return f"{email} is not a member of a Tributary team: ask your admin to add you"


def check_domain(domain: str) -> str:
    domain = (domain or "").strip().lower().rstrip(".")
    if len(domain) > MAX_DOMAIN_CHARS or not _DOMAIN_NAME.match(domain):
        raise InvalidInput(f"domain {domain!r}: not a domain name like example.com", field="domain")
    return domain


class SheetsIdentities:
    def __init__(self, engine: Engine, accounts: Accounts) -> None:
        self.engine = engine
        self.accounts = accounts

    def identify(self, account: GoogleAccount) -> SheetsCaller:
        """The member behind a verified Google account, or NotAMember (403) saying how to get added."""
        try:
            email = normalise_member_email(account.email)
        except InvalidInput:
            raise NotAMember(not_a_member(account.email)) from None
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_MEMBER.c.id, _MEMBER.c.team_id, _MEMBER.c.google_subject, _DOMAIN.c.google_domain)
                .select_from(_MEMBER.outerjoin(_DOMAIN, _DOMAIN.c.team_id == _MEMBER.c.team_id))
                .where(func.lower(_MEMBER.c.email) == email)
                .order_by(_MEMBER.c.id)
            ).all()
        hd = (account.hosted_domain or "").lower() or None
        allowed = [r for r in rows if r.google_domain is None or r.google_domain == hd]
        if not allowed:
            raise NotAMember(not_a_member(account.email))
        # One person in several teams: the member this Google account signed in as before, else the oldest.
        chosen = next((r for r in allowed if r.google_subject == account.subject), allowed[0])
        if chosen.google_subject != account.subject:
            subject = account.subject[:MAX_NAME_CHARS]
            stmt = update(_MEMBER).where(_MEMBER.c.id == chosen.id).values(google_subject=subject)
            run_write(self.engine, lambda conn: conn.execute(stmt))
        member = self.accounts.member(chosen.id)
        team = self.accounts.team(member.team_id)
        return SheetsCaller(Actor.of_member(team.id, member.id, member.is_admin, Channel.SHEETS), team, member, account)

    def restrict_domain(self, team_ref: int | str, domain: str | None) -> str | None:
        """Accept only Google users of `domain` (their token's `hd`) for this team; None lifts it."""
        team = self.accounts.team(team_ref)
        if domain is None:
            run_write(self.engine, lambda conn: conn.execute(delete(_DOMAIN).where(_DOMAIN.c.team_id == team.id)))
            return None
        domain = check_domain(domain)
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
        stmt = insert(_DOMAIN).values(team_id=team.id, google_domain=domain, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=["team_id"], set_=dict(google_domain=domain, updated_at=utcnow())
        )
        run_write(self.engine, lambda conn: conn.execute(stmt))
        return domain

    def domain_of(self, team_ref: int | str) -> str | None:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            return conn.execute(select(_DOMAIN.c.google_domain).where(_DOMAIN.c.team_id == team.id)).scalar()


__all__ = ["GoogleAccount", "SheetsCaller", "SheetsIdentities", "check_domain", "not_a_member"]
