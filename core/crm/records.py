"""The sync's own bookkeeping: what it knows of each CRM contact and what it wrote there.

One row per CRM contact (its link and what the CRM held, hashed) and one per property Tributary
wrote (a hash, the CRM's last-modified after it, whether a person took it over)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import is_sqlite
from storage.models import CrmRecord, CrmWrite
from storage.timeutil import utcnow

REC = CrmRecord.__table__
WR = CrmWrite.__table__
READ_CHUNK = 1000


@dataclass(frozen=True)
class RecordRow:
    id: int
    crm_id: str
    person_id: int | None
    modified_ms: int
    seen: dict[str, str]


@dataclass(frozen=True)
class WriteRow:
    value_hash: str
    yielded: bool


@dataclass(frozen=True)
class RecordUpsert:
    crm_id: str
    person_id: int | None
    modified_ms: int
    seen: dict[str, str]


def _insert(conn: Connection, table):
    return (sqlite.insert if is_sqlite(conn.engine) else postgresql.insert)(table)


def records_by_crm_id(conn: Connection, connection_id: int, crm_ids: Sequence[str]) -> dict[str, RecordRow]:
    out: dict[str, RecordRow] = {}
    for i in range(0, len(crm_ids), READ_CHUNK):
        rows = conn.execute(
            select(REC).where(REC.c.connection_id == connection_id, REC.c.crm_id.in_(crm_ids[i : i + READ_CHUNK]))
        )
        out.update({r.crm_id: RecordRow(r.id, r.crm_id, r.person_id, r.modified_ms, dict(r.seen or {})) for r in rows})
    return out


def linked_records(conn: Connection, connection_id: int, after_id: int, limit: int) -> list[RecordRow]:
    rows = conn.execute(
        select(REC)
        .where(REC.c.connection_id == connection_id, REC.c.person_id.is_not(None), REC.c.id > after_id)
        .order_by(REC.c.id)
        .limit(limit)
    )
    return [RecordRow(r.id, r.crm_id, r.person_id, r.modified_ms, dict(r.seen or {})) for r in rows]


def upsert_records(conn: Connection, connection_id: int, rows: Iterable[RecordUpsert]) -> None:
    """Insert or refresh; a contact that matched nobody this time keeps the person it was linked to."""
    values = [
        dict(
            connection_id=connection_id,
            crm_id=r.crm_id,
            person_id=r.person_id,
            modified_ms=r.modified_ms,
            seen=r.seen,
            updated_at=utcnow(),
        )
        for r in rows
    ]
    if not values:
        return
    # One statement run for many rows (executemany): a multi-row VALUES costs more to compile than to run.
    stmt = _insert(conn, REC)
    stmt = stmt.on_conflict_do_update(
        index_elements=["connection_id", "crm_id"],
        set_={
            "person_id": _coalesce(stmt.excluded.person_id, REC.c.person_id),
            "modified_ms": stmt.excluded.modified_ms,
            "seen": stmt.excluded.seen,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt, values)


def _coalesce(a, b):
    return func.coalesce(a, b)


def writes_for(conn: Connection, record_ids: Sequence[int]) -> dict[tuple[int, str], WriteRow]:
    out: dict[tuple[int, str], WriteRow] = {}
    for i in range(0, len(record_ids), READ_CHUNK):
        for r in conn.execute(select(WR).where(WR.c.record_id.in_(record_ids[i : i + READ_CHUNK]))):
            out[(r.record_id, r.property)] = WriteRow(r.value_hash, r.yielded)
    return out


def record_writes(conn: Connection, written: Sequence[tuple[int, str, str, int]]) -> None:
    """(record id, property, value hash, CRM last-modified after the write) for each value written."""
    if not written:
        return
    now = utcnow()
    rows = [
        dict(record_id=r, property=p, value_hash=h, modified_ms=m, yielded=False, written_at=now)
        for r, p, h, m in written
    ]
    stmt = _insert(conn, WR)
    stmt = stmt.on_conflict_do_update(
        index_elements=["record_id", "property"],
        set_={
            "value_hash": stmt.excluded.value_hash,
            "modified_ms": stmt.excluded.modified_ms,
            "written_at": stmt.excluded.written_at,
        },
    )
    conn.execute(stmt, rows)


def mark_yielded(conn: Connection, pairs: Iterable[tuple[int, str]]) -> None:
    rows = [{"w_record": r, "w_property": p} for r, p in pairs]
    if rows:
        stmt = update(WR).where(WR.c.record_id == bindparam("w_record"), WR.c.property == bindparam("w_property"))
        conn.execute(stmt.values(yielded=True), rows)


_SET_SEEN = (
    update(REC)
    .where(REC.c.id == bindparam("r_id"))
    .values(seen=bindparam("r_seen", type_=REC.c.seen.type), modified_ms=bindparam("r_modified"))
)


def set_seen(conn: Connection, rows: Sequence[tuple[int, Mapping[str, str], int]]) -> None:
    """(record id, seen hashes, CRM last-modified) for many records in one executemany."""
    if rows:
        conn.execute(_SET_SEEN, [{"r_id": r, "r_seen": dict(s), "r_modified": m} for r, s, m in rows])
