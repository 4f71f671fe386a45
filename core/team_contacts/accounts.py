"""A team's accounts (the companies of its contacts): paged by filter, shown, owned, reassigned.

An account's id is its company's id (the `account_id` on contacts); the team's own row holds the
owner, the source and the date saved (written where contacts are saved: core.people.company_accounts).
A company the team has no account at is "not found", whoever else has it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, Engine, Select, func, or_, select, update

from core.accounts import MemberInfo
from core.actors import require_reassign
from core.errors import InvalidInput, NotFound
from core.team_contacts import filters as q
from core.team_contacts.models import (
    MAX_PAGE_SIZE,
    MAX_SELECTION_IDS,
    MAX_TEXT_CHARS,
    AccountFilter,
    AccountPage,
    AccountSelection,
    AccountView,
    BulkResult,
    PageRequest,
    Sort,
)
from core.team_contacts.rules import member_actor
from core.team_contacts.service import TeamContacts, _chunks
from storage.db import read_transaction, run_write
from storage.models import Member
from storage.models.enums import ContactSource

TA, TC, P, C = q.TA, q.TC, q.P, q.C
M = Member.__table__
# Rows per UPDATE of a bulk assignment (bounded statements for any number of accounts).
ASSIGN_CHUNK_ROWS = 1000
ACCOUNT_WORDS = "owner:@me|EMAIL|none, source:; other words search the name and domain"

_CONTACTS = (
    select(func.count())
    .select_from(TC.join(P, P.c.id == TC.c.person_id))
    .where(TC.c.team_id == TA.c.team_id, P.c.company_id == TA.c.company_id)
    .scalar_subquery()
)
_COLUMNS = (
    TA.c.id.label("row_id"),
    C.c.id,
    C.c.name,
    C.c.domain,
    TA.c.owner_member_id,
    M.c.email.label("owner_email"),
    TA.c.source,
    TA.c.created_at,
    _CONTACTS.label("contacts"),
)
_FROM = TA.join(C, C.c.id == TA.c.company_id).outerjoin(M, M.c.id == TA.c.owner_member_id)


def conditions(team_id: int, f: AccountFilter) -> list:
    out = [TA.c.team_id == team_id]
    if f.owner_ids:
        out.append(TA.c.owner_member_id.in_(list(f.owner_ids)))
    if f.unowned:
        out.append(TA.c.owner_member_id.is_(None))
    if f.sources:
        out.append(TA.c.source.in_([s.value for s in f.sources]))
    if f.text:
        pattern = q._like_escaped(f.text.strip().lower())
        out.append(
            or_(
                func.lower(C.c.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(C.c.domain, "")).like(pattern, escape="\\"),
            )
        )
    return out


def check_filter(f: AccountFilter) -> AccountFilter:
    if f.text is not None and len(f.text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text: longer than {MAX_TEXT_CHARS} characters")
    return f


def _view(r) -> AccountView:
    return AccountView(
        id=r.id, name=r.name, domain=r.domain, owner_member_id=r.owner_member_id, owner_email=r.owner_email,
        source=ContactSource(r.source), saved_at=r.created_at, contacts=r.contacts,
    )  # fmt: skip


class TeamAccounts:
    def __init__(self, engine: Engine, contacts: TeamContacts) -> None:
        self.engine = engine
        self.contacts = contacts
        self.accounts = contacts.accounts

    def find(
        self, actor: MemberInfo, f: AccountFilter = AccountFilter(), page: PageRequest = PageRequest()
    ) -> AccountPage:
        """A page of the team's accounts, newest saved first (keyset on the team's saved index)."""
        f = check_filter(f)
        if not 1 <= page.limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE_SIZE}")
        fingerprint = q.filter_fingerprint(f, Sort.SAVED_DESC)
        stmt: Select = select(*_COLUMNS).select_from(_FROM).where(*conditions(actor.team_id, f))
        if page.cursor:
            saved, row_id = q.decode_cursor(page.cursor, fingerprint, Sort.SAVED_DESC)
            stmt = stmt.where(TA.c.created_at <= saved, or_(TA.c.created_at < saved, TA.c.id < row_id))
        stmt = stmt.order_by(TA.c.created_at.desc(), TA.c.id.desc()).limit(page.limit + 1)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        cursor = q.encode_cursor(fingerprint, (rows[-1].created_at, rows[-1].row_id)) if more and rows else None
        return AccountPage([_view(r) for r in rows], cursor)

    def show(self, actor: MemberInfo, account_id: int) -> AccountView:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(*_COLUMNS).select_from(_FROM).where(TA.c.team_id == actor.team_id, TA.c.company_id == account_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"unknown account {account_id}")
        return _view(row)

    def count(self, actor: MemberInfo, f: AccountFilter = AccountFilter()) -> int:
        f = check_filter(f)
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(func.count())
                .select_from(TA.join(C, C.c.id == TA.c.company_id))
                .where(*conditions(actor.team_id, f))
            ).scalar_one()

    def filter_from_words(self, actor: MemberInfo, words: Sequence[str], member_id=None) -> AccountFilter:
        """`owner:@me source:csv acme`: the contacts' filter words an account has (owner, source);
        other words search the name and domain."""
        cf = self.contacts.filter_from_words(actor, words, member_id)
        rest = replace(cf, owner_ids=(), unowned=False, sources=(), text=None)
        if rest != type(cf)():
            raise InvalidInput(f"accounts: filter words are {ACCOUNT_WORDS}")
        return AccountFilter(owner_ids=cf.owner_ids, unowned=cf.unowned, sources=cf.sources, text=cf.text)

    def assign(
        self, actor: MemberInfo, owner_ref: int | str, selection: AccountSelection, *, now: datetime | None = None
    ) -> BulkResult:
        """Give the selected accounts to `owner_ref` (a member of the actor's team). Named ids must
        all be the actor's to give (admins: any of the team's), else nothing changes; a filter
        selects, for a member, only the accounts they own. The accounts' contacts keep their owners."""
        owner = self.accounts.member(owner_ref, actor.team_id)

        def op(conn: Connection) -> BulkResult:
            ids = self.selection_ids(conn, actor, selection)
            changed = 0
            for chunk in _chunks(ids, ASSIGN_CHUNK_ROWS):
                changed += conn.execute(
                    update(TA)
                    .where(
                        TA.c.team_id == actor.team_id,
                        TA.c.company_id.in_(list(chunk)),
                        TA.c.owner_member_id.is_distinct_from(owner.id),
                    )
                    .values(owner_member_id=owner.id)
                ).rowcount
            return BulkResult(matched=len(ids), changed=changed)

        return run_write(self.engine, op)

    def selection_ids(self, conn: Connection, actor: MemberInfo, selection: AccountSelection) -> list[int]:
        """The account ids a selection names, checked against the team and core.actors' rule."""
        if bool(selection.account_ids) == (selection.filter is not None):
            raise InvalidInput("selection: name account ids or a filter (one of them)")
        if selection.account_ids:
            ids = sorted(set(selection.account_ids))
            if len(ids) > MAX_SELECTION_IDS:
                raise InvalidInput(f"account ids: at most {MAX_SELECTION_IDS} at a time; use a filter")
            owners = dict(
                conn.execute(
                    select(TA.c.company_id, TA.c.owner_member_id).where(
                        TA.c.team_id == actor.team_id, TA.c.company_id.in_(ids)
                    )
                ).all()
            )
            who = member_actor(actor)
            for account_id in ids:
                if account_id not in owners:
                    raise NotFound(f"unknown account {account_id}")
                require_reassign(who, owners[account_id], f"account {account_id}")
            return ids
        f = check_filter(selection.filter)
        if not actor.is_admin:  # a member's filter reaches only their own accounts
            f = replace(f, owner_ids=(actor.id,) if not f.owner_ids or actor.id in f.owner_ids else (-1,))
        stmt = select(TA.c.company_id).select_from(TA.join(C, C.c.id == TA.c.company_id))
        return list(conn.execute(stmt.where(*conditions(actor.team_id, f)).order_by(TA.c.company_id)).scalars())
