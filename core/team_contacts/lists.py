"""Named static lists of a team's contacts. A contact may be in many lists; adding or removing by
filter touches every contact the filter selects at that moment."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, func, literal, select

from core.accounts import AlreadyExists, MemberInfo
from core.errors import InvalidInput
from core.team_contacts.models import MAX_LIST_NAME_CHARS, BulkResult, ListInfo, Selection
from core.team_contacts.service import LE, TC, L, TeamContacts, insert_ignore, inserted, resolve_list
from storage.db import read_transaction, run_write
from storage.timeutil import utcnow

# Rows per INSERT ... of list entries (bounded statements for lists of any size).
ENTRY_CHUNK_ROWS = 1000


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("list name: must not be empty")
    if len(name) > MAX_LIST_NAME_CHARS:
        raise InvalidInput(f"list name: longer than {MAX_LIST_NAME_CHARS} characters")
    if name.isdigit():
        raise InvalidInput(f"list name: {name!r} is a number (numbers refer to list ids)")
    return name


class ContactLists:
    def __init__(self, engine: Engine, contacts: TeamContacts) -> None:
        self.engine = engine
        self.contacts = contacts

    def create(self, actor: MemberInfo, name: str) -> ListInfo:
        name = _check_name(name)

        def op(conn: Connection) -> ListInfo:
            now = utcnow()
            list_id = conn.execute(
                insert_ignore(conn, L)
                .values(team_id=actor.team_id, name=name, created_by_member_id=actor.id, created_at=now)
                .on_conflict_do_nothing(index_elements=["team_id", "name"])
                .returning(L.c.id)
            ).scalar()
            if list_id is None:
                raise AlreadyExists(f"list {name!r} already exists")
            return ListInfo(list_id, name, 0, now)

        return run_write(self.engine, op)

    def get(self, actor: MemberInfo, ref: int | str) -> ListInfo:
        with read_transaction(self.engine) as conn:
            return self._info(conn, self.resolve(conn, actor, ref))

    def all(self, actor: MemberInfo) -> list[ListInfo]:
        with read_transaction(self.engine) as conn:
            ids = conn.execute(select(L.c.id).where(L.c.team_id == actor.team_id).order_by(L.c.name)).scalars().all()
            return [self._info(conn, i) for i in ids]

    def add(self, actor: MemberInfo, ref: int | str, selection: Selection) -> BulkResult:
        def op(conn: Connection) -> BulkResult:
            list_id = self.resolve(conn, actor, ref)
            ids = self.contacts.selection_ids(conn, actor, selection)
            now = utcnow()
            added = 0
            for i in range(0, len(ids), ENTRY_CHUNK_ROWS):
                # INSERT ... SELECT: one statement per chunk, whose rowcount is the rows it added.
                rows = select(literal(list_id), TC.c.id, literal(now, LE.c.added_at.type)).where(
                    TC.c.id.in_(ids[i : i + ENTRY_CHUNK_ROWS])
                )
                stmt = insert_ignore(conn, LE).from_select(["list_id", "contact_id", "added_at"], rows)
                added += inserted(conn, stmt.on_conflict_do_nothing(index_elements=["list_id", "contact_id"]))
            return BulkResult(matched=len(ids), changed=added)

        return run_write(self.engine, op)

    def remove(self, actor: MemberInfo, ref: int | str, selection: Selection) -> BulkResult:
        def op(conn: Connection) -> BulkResult:
            list_id = self.resolve(conn, actor, ref)
            ids = self.contacts.selection_ids(conn, actor, selection)
            removed = 0
            for i in range(0, len(ids), ENTRY_CHUNK_ROWS):
                chunk = ids[i : i + ENTRY_CHUNK_ROWS]
                removed += conn.execute(delete(LE).where(LE.c.list_id == list_id, LE.c.contact_id.in_(chunk))).rowcount
            return BulkResult(matched=len(ids), changed=removed)

        return run_write(self.engine, op)

    def resolve(self, conn: Connection, actor: MemberInfo, ref: int | str) -> int:
        return resolve_list(conn, actor, ref)

    @staticmethod
    def _info(conn: Connection, list_id: int) -> ListInfo:
        row = conn.execute(select(L).where(L.c.id == list_id)).one()
        n = conn.execute(select(func.count()).select_from(LE).where(LE.c.list_id == list_id)).scalar_one()
        return ListInfo(row.id, row.name, n, row.created_at)
