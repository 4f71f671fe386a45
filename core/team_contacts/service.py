"""A team's contacts: saved, found by filter page by page (keyset), shown, owned.

Every read and write is scoped to the actor's team: another team's contact id is "not found"."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import JSON, Connection, Engine, Select, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, MemberInfo
from core.errors import InvalidInput, NotFound
from core.people.company_accounts import save_accounts_of
from core.team_contacts import filters as q
from core.team_contacts.models import (
    MAX_PAGE_SIZE,
    MAX_SELECTION_IDS,
    BulkResult,
    ContactFilter,
    ContactPage,
    ContactView,
    PageRequest,
    PhoneView,
    Selection,
    Sort,
)
from core.team_contacts.rules import NotPermitted, may_reassign
from storage.db import read_transaction, run_write
from storage.models import ContactList, EmploymentHistory, Member
from storage.models.enums import ContactSource, EmailStatus
from storage.sql_lists import one_of
from storage.timeutil import as_utc, utcnow

TC, P, C, E, PH, LE = q.TC, q.P, q.C, q.E, q.PH, q.LE
M = Member.__table__
L = ContactList.__table__
H = EmploymentHistory.__table__

# What a page row carries from the contact, the person, the company and the best email. Owner and
# phones are added around the page (see `detailed`), so they are read for its rows only.
_ROW_COLUMNS = (
    TC.c.id,
    TC.c.person_id,
    TC.c.owner_member_id,
    TC.c.source,
    TC.c.created_at,
    P.c.full_name,
    P.c.title,
    P.c.company_id,
    P.c.linkedin_url,
    P.c.location,
    C.c.name.label("company"),
    C.c.domain,
    q.BE.c.address.label("email"),
    q.BE.c.status.label("email_status"),
)
_EMAIL_STATUS = {s.value: s for s in EmailStatus}
_SOURCE = {s.value: s for s in ContactSource}
# Statements built per filter shape, sort, cursor presence and page size (values are bind
# parameters); cleared when full, as shapes a caller can produce are few.
MAX_CACHED_STATEMENTS = 512


def _phones_of(person_id, dialect: str):
    """The person's phones as one JSON array of [id, e164, kind, line_type, status] (a correlated
    aggregate: over a page of 26 rows it costs 26 index probes, in the same statement)."""
    cells = (PH.c.id, PH.c.e164, PH.c.kind, PH.c.line_type, PH.c.status)
    if dialect == "sqlite":
        agg = func.json_group_array(func.json_array(*cells), type_=JSON)
    else:
        agg = func.json_agg(func.json_build_array(*cells), type_=JSON)
    return select(agg).where(PH.c.person_id == person_id).scalar_subquery()


def detailed(inner: Select, dialect: str) -> tuple[Select, object]:
    """`inner` (a SELECT of _ROW_COLUMNS, already limited) with each row's owner email and phones: one
    statement per page. Returns the statement and the page subquery (to order the outer rows by)."""
    page = inner.subquery("page")
    stmt = select(*page.c, M.c.email.label("owner_email"), _phones_of(page.c.person_id, dialect).label("phones"))
    return stmt.select_from(page.outerjoin(M, M.c.id == page.c.owner_member_id)), page


def _outer_order(page, sort: Sort) -> list:
    if sort == Sort.SAVED_DESC:
        return [page.c.created_at.desc(), page.c.id.desc()]
    if sort == Sort.SAVED_ASC:
        return [page.c.created_at.asc(), page.c.id.asc()]
    return [page.c.full_name.asc(), page.c.id.asc()]


def insert_ignore(conn: Connection, table):
    return (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(table)


def inserted(conn: Connection, stmt) -> int:
    """Run an INSERT and return how many rows it added (SQLAlchemy keeps an INSERT's rowcount only
    when asked to)."""
    return conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount


class TeamContacts:
    def __init__(self, engine: Engine, accounts: Accounts | None = None) -> None:
        self.engine = engine
        self.accounts = accounts or Accounts(engine)
        self.dialect = engine.dialect.name
        self._statements: dict[tuple, Select] = {}

    # ---- finding ------------------------------------------------------------------------------

    def find(
        self, actor: MemberInfo, f: ContactFilter = ContactFilter(), page: PageRequest = PageRequest()
    ) -> ContactPage:
        f = q.check_filter(f)
        if not 1 <= page.limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE_SIZE}")
        sort = Sort(page.sort)
        fingerprint = q.filter_fingerprint(f, sort)
        after = q.decode_cursor(page.cursor, fingerprint, sort) if page.cursor else None
        params = q.flat_values(actor.team_id, f)
        if after is not None:
            params.update(after_key=after[0], after_id=after[1])
        stmt = self._page_statement(f, sort, after, page.limit)
        with read_transaction(self.engine) as conn:
            if f.list_id is not None:
                self.check_list(conn, actor.team_id, f.list_id)
            rows = conn.execute(stmt, params).all()
            views = self.views(conn, rows[: page.limit])
        more = len(rows) > page.limit
        next_cursor = None
        if more and views:
            last = views[-1]
            key = (last.full_name if sort == Sort.NAME else last.saved_at, last.id)
            next_cursor = q.encode_cursor(fingerprint, key)
        return ContactPage(views, next_cursor)

    def _page_statement(self, f: ContactFilter, sort: Sort, after: tuple | None, limit: int) -> Select:
        """The page's one SELECT for this filter's shape, built once (its values are bind parameters)."""
        key = (q.filter_shape(f), sort, after is not None, limit)
        stmt = self._statements.get(key)
        if stmt is None:
            order, keyset = q.order_and_after(sort, after)
            inner = (
                select(*_ROW_COLUMNS)
                .select_from(q.FROM)
                .where(*q.conditions(0, f), *keyset)
                .order_by(*order)
                .limit(limit + 1)
            )
            stmt, page = detailed(inner, self.dialect)
            stmt = stmt.order_by(*_outer_order(page, sort))
            if len(self._statements) >= MAX_CACHED_STATEMENTS:
                self._statements.clear()
            self._statements[key] = stmt
        return stmt

    def rows_by_ids(self, conn: Connection, ids: Sequence[int]) -> list[ContactView]:
        """The contacts with these ids (already checked to be the caller's), by id."""
        inner = select(*_ROW_COLUMNS).select_from(q.FROM).where(TC.c.id.in_(list(ids)))
        stmt, page = detailed(inner, self.dialect)
        return self.views(conn, conn.execute(stmt.order_by(page.c.id)).all())

    def count(self, actor: MemberInfo, f: ContactFilter = ContactFilter()) -> int:
        f = q.check_filter(f)
        with read_transaction(self.engine) as conn:
            if f.list_id is not None:
                self.check_list(conn, actor.team_id, f.list_id)
            return conn.execute(
                select(func.count()).select_from(q.selected_ids(actor.team_id, f).subquery())
            ).scalar_one()

    def show(self, actor: MemberInfo, contact_id: int) -> ContactView:
        with read_transaction(self.engine) as conn:
            stmt, _ = detailed(
                select(*_ROW_COLUMNS).select_from(q.FROM).where(TC.c.team_id == actor.team_id, TC.c.id == contact_id),
                self.dialect,
            )
            row = conn.execute(stmt).one_or_none()
            if row is None:
                raise NotFound(f"unknown contact {contact_id}")
            view = self.views(conn, [row])[0]
            names = conn.execute(
                select(L.c.name)
                .join(LE, LE.c.list_id == L.c.id)
                .where(LE.c.contact_id == contact_id)
                .order_by(L.c.name)
            ).scalars()
            return replace(view, lists=tuple(names))

    def filter_from_words(
        self, actor: MemberInfo, words: Sequence[str], member_id: Callable[[str], int] | None = None
    ) -> ContactFilter:
        """`status:verified owner:@me list:Q3 ...` (see filters.FILTER_WORDS) within the actor's team.
        `member_id` resolves a front end's own owner references (a Slack mention); default: email or id."""

        def by_ref(ref: str) -> int:
            return self.accounts.member(int(ref) if ref.isdigit() else ref, actor.team_id).id

        with read_transaction(self.engine) as conn:
            return q.parse_filter_words(
                words,
                me_id=actor.id,
                member_id=member_id or by_ref,
                list_id=lambda ref: resolve_list(conn, actor, ref),
            )

    # ---- saving and owning ----------------------------------------------------------------------

    def save(
        self, actor: MemberInfo, person_ids: Sequence[int], source: ContactSource, *, now: datetime | None = None
    ) -> BulkResult:
        """Save people as the actor's contacts (uploads, CRM sync). Already saved: left as they are."""
        ids = sorted(set(person_ids))
        if len(ids) > MAX_SELECTION_IDS:
            raise InvalidInput(f"people: at most {MAX_SELECTION_IDS} at a time")
        source = ContactSource(source)
        when = now or utcnow()

        def op(conn: Connection) -> BulkResult:
            known = set(conn.execute(select(P.c.id).where(one_of(conn, P.c.id, ids))).scalars())
            missing = [i for i in ids if i not in known]
            if missing:
                raise NotFound(f"unknown person {missing[0]}")
            values = select(
                literal(actor.team_id), P.c.id, literal(actor.id), literal(actor.id), literal(source.value),
                literal(when, TC.c.created_at.type),
            ).where(one_of(conn, P.c.id, ids))  # fmt: skip
            columns = ["team_id", "person_id", "created_by_member_id", "owner_member_id", "source", "created_at"]
            stmt = insert_ignore(conn, TC).from_select(columns, values)
            changed = inserted(conn, stmt.on_conflict_do_nothing(index_elements=["team_id", "person_id"]))
            save_accounts_of(conn, ids, when, [actor.team_id])
            return BulkResult(matched=len(ids), changed=max(changed, 0))

        return run_write(self.engine, op)

    def assign(self, actor: MemberInfo, owner_ref: int | str, selection: Selection) -> BulkResult:
        """Give the selected contacts to `owner_ref` (a member of the actor's team).

        Named ids must all be the actor's to give (admins: any of the team's), else nothing changes.
        A filter selects, for a member, only the contacts they own."""
        owner = self.accounts.member(owner_ref, actor.team_id)

        def op(conn: Connection) -> BulkResult:
            ids = self.selection_ids(conn, actor, selection, own_only=not actor.is_admin)
            changed = 0
            for chunk in _chunks(ids, 1000):
                changed += conn.execute(
                    update(TC)
                    .where(
                        TC.c.id.in_(chunk),
                        TC.c.team_id == actor.team_id,
                        TC.c.owner_member_id.is_distinct_from(owner.id),
                    )
                    .values(owner_member_id=owner.id)
                ).rowcount
            return BulkResult(matched=len(ids), changed=changed)

        return run_write(self.engine, op)

    # ---- shared helpers ---------------------------------------------------------------------

    def selection_ids(
        self, conn: Connection, actor: MemberInfo, selection: Selection, *, own_only: bool = False
    ) -> list[int]:
        """The ids a selection names, checked against the actor's team (and, with `own_only`, the
        actor's ownership: named ids they do not own are refused, a filter is narrowed to theirs)."""
        if bool(selection.contact_ids) == (selection.filter is not None):
            raise InvalidInput("selection: name contact ids or a filter (one of them)")
        if selection.contact_ids:
            ids = sorted(set(selection.contact_ids))
            if len(ids) > MAX_SELECTION_IDS:
                raise InvalidInput(f"contact ids: at most {MAX_SELECTION_IDS} at a time; use a filter or a list")
            owners = dict(
                conn.execute(
                    select(TC.c.id, TC.c.owner_member_id).where(TC.c.team_id == actor.team_id, TC.c.id.in_(ids))
                ).all()
            )
            for contact_id in ids:
                if contact_id not in owners:
                    raise NotFound(f"unknown contact {contact_id}")
                if own_only and not may_reassign(actor, owners[contact_id]):
                    raise NotPermitted(f"contact {contact_id}: only its owner or an admin may reassign it")
            return ids
        f = q.check_filter(selection.filter)
        if f.list_id is not None:
            self.check_list(conn, actor.team_id, f.list_id)
        if own_only:
            f = replace(f, owner_ids=(actor.id,) if not f.owner_ids or actor.id in f.owner_ids else (-1,))
        return list(conn.execute(q.selected_ids(actor.team_id, f).order_by(TC.c.id)).scalars())

    @staticmethod
    def check_list(conn: Connection, team_id: int, list_id: int):
        row = conn.execute(select(L).where(L.c.id == list_id, L.c.team_id == team_id)).one_or_none()
        if row is None:
            raise NotFound(f"unknown list {list_id}")
        return row

    @staticmethod
    def views(conn: Connection, rows: Sequence) -> list[ContactView]:
        """Typed views of `detailed` rows (phones arrive as JSON, put in id order here). Rows are
        unpacked by position: per-name access on every cell was most of a page's Python time."""
        moves = _current_moves(conn, {row[1] for row in rows})  # job-change flags, live
        out = []
        for (contact_id, person_id, owner_id, source, saved_at, full_name, title, company_id, linkedin_url,
             location, company, domain, email, email_status, owner_email, phones) in rows:  # fmt: skip
            if isinstance(phones, str):  # a driver that hands JSON over as text
                phones = json.loads(phones)
            if phones and len(phones) > 1:
                phones = sorted(phones, key=_first)
            out.append(ContactView(
                contact_id, person_id, full_name, title, company_id, company, domain, email,
                _EMAIL_STATUS[email_status] if email_status else EmailStatus.UNAVAILABLE,
                tuple([PhoneView(p[1], p[2], p[3], p[4]) for p in phones or ()]),
                owner_id, owner_email, _SOURCE[source], saved_at, linkedin_url, location,
                job_change_on=_moved_since(moves.get(person_id), saved_at),
            ))  # fmt: skip
        return out


def _first(cells: Sequence) -> object:
    return cells[0]


def _current_moves(conn: Connection, person_ids: set[int]) -> dict[int, tuple[date, datetime]]:
    """(day, recorded at) of the current stint of each page person who moved (job-change flag, live)."""
    if not person_ids:
        return {}
    found = conn.execute(
        select(H.c.person_id, H.c.from_on, H.c.recorded_at).where(
            H.c.person_id.in_(sorted(person_ids)), H.c.to_on.is_(None), H.c.from_on.is_not(None)
        )
    ).all()
    return {m.person_id: (m.from_on, as_utc(m.recorded_at)) for m in found}


def _moved_since(move: tuple[date, datetime] | None, saved_at: datetime) -> date | None:
    return move[0] if move is not None and move[1] >= as_utc(saved_at) else None


def resolve_list(conn: Connection, actor: MemberInfo, ref: int | str) -> int:
    """A list of the actor's team by id or name; another team's list is "not found"."""
    by_id = isinstance(ref, int) or ref.strip().isdigit()
    column = L.c.id if by_id else L.c.name
    value = int(ref) if by_id else ref.strip()
    found = conn.execute(select(L.c.id).where(L.c.team_id == actor.team_id, column == value)).scalar()
    if found is None:
        raise NotFound(f"unknown list {ref!r}")
    return found


def _chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]
