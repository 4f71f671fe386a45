"""The sheets_job and sheets_row tables: a Sheets job's placement data, writing state and token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update

from core.enrichment.rows import RowOutput
from storage.db import read_transaction, run_write
from storage.limits import MAX_NAME_CHARS, MAX_TEXT_CHARS
from storage.models import EnrichmentRow, SheetsJob, SheetsRow
from storage.sql_lists import one_of
from storage.timeutil import as_utc, utcnow

_SJ = SheetsJob.__table__
_SR = SheetsRow.__table__
# One prebuilt UPDATE for every row a write pass settles (executemany), not one statement per row.
_SETTLE_ROW = (
    update(_SR)
    .where(_SR.c.job_id == bindparam("p_job_id"), _SR.c.row_index == bindparam("p_row_index"), _SR.c.outcome.is_(None))
    .values(outcome=bindparam("p_outcome"), status=bindparam("p_status"), credits_shown=bindparam("p_credits_shown"),
            written_row=bindparam("p_written_row"), kept=bindparam("p_kept"))
)
_ER = EnrichmentRow.__table__
INSERT_ROWS_PER_TX = 2000
SETTLE_READ_ROWS = 5000  # row indexes per read when settling (SQLite: under its 32,766 parameters)

ENRICHING, WRITING, WAITING, DONE, INCOMPLETE, CANCELLED, FAILED = (
    "enriching", "writing", "waiting_for_token", "done", "incomplete", "cancelled", "failed",
)
FINAL_STATES = (DONE, INCOMPLETE, CANCELLED, FAILED)


@dataclass(frozen=True)
class SheetsJobInfo:
    job_id: int
    team_id: int
    member_id: int
    spreadsheet_id: str
    sheet_id: int
    sheet_name: str
    header_row: int
    mapping: dict[str, str]
    outputs: dict[str, str]  # kind -> letter
    output_headers: dict[str, str]
    state: str
    message: str | None
    rows_total: int
    rows_written: int
    has_token: bool
    retry_of: int | None
    refused_token_sha256: str | None = None  # of the last token Google refused (token_sha256)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class NewRow:
    row_index: int
    sheet_row: int
    fingerprint: str
    blank: bool


@dataclass(frozen=True)
class ReadyRow:
    row_index: int
    sheet_row: int
    fingerprint: str
    blank: bool
    output: RowOutput | None  # None: never enriched (the job was cancelled first)


@dataclass(frozen=True)
class Settled:
    row_index: int
    outcome: str
    status: str | None
    credits_shown: int
    written_row: int | None
    kept: bool = False


def token_sha256(token: str) -> str:
    """A token's fingerprint: tells a token Google refused apart from a fresh one, reveals neither."""
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row) -> SheetsJobInfo:
    return SheetsJobInfo(
        row.job_id, row.team_id, row.member_id, row.spreadsheet_id, row.sheet_id, row.sheet_name, row.header_row,
        dict(row.mapping), dict(row.outputs), dict(row.output_headers), row.state, row.message, row.rows_total,
        row.rows_written, row.token_encrypted is not None, row.retry_of, row.refused_token_sha256,
    )


class SheetsStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, values: dict, rows: Sequence[NewRow]) -> None:
        now = utcnow()
        values = dict(values, sheet_name=values["sheet_name"][:MAX_NAME_CHARS], created_at=now, updated_at=now,
                      rows_written=0, rows_total=len(rows))
        run_write(self.engine, lambda conn: conn.execute(insert(_SJ).values(**values)))
        for start in range(0, len(rows), INSERT_ROWS_PER_TX):
            part = [
                dict(job_id=values["job_id"], row_index=r.row_index, sheet_row=r.sheet_row, fingerprint=r.fingerprint,
                     blank=r.blank, outcome=None, status=None, credits_shown=0, written_row=None, kept=False)
                for r in rows[start : start + INSERT_ROWS_PER_TX]
            ]
            run_write(self.engine, lambda conn, p=part: conn.execute(insert(_SR), p))

    def job(self, job_id: int) -> SheetsJobInfo | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_SJ).where(_SJ.c.job_id == job_id)).one_or_none()
        return None if row is None else _info(row)

    def token(self, job_id: int) -> str | None:
        with read_transaction(self.engine) as conn:
            return conn.execute(select(_SJ.c.token_encrypted).where(_SJ.c.job_id == job_id)).scalar()

    def set_token(self, job_id: int, sealed: str, sha256: str) -> bool:
        """Keep only the latest token of a job that is not over (a finished job keeps none), never
        the one Google refused. Returns whether it was kept."""
        stmt = update(_SJ).where(
            _SJ.c.job_id == job_id, _SJ.c.state.not_in(FINAL_STATES),
            or_(_SJ.c.refused_token_sha256.is_(None), _SJ.c.refused_token_sha256 != sha256),
        ).values(token_encrypted=sealed, token_sha256=sha256, updated_at=utcnow())
        return bool(run_write(self.engine, lambda conn: conn.execute(stmt).rowcount))

    def drop_token(self, job_id: int) -> None:
        stmt = update(_SJ).where(_SJ.c.job_id == job_id).values(
            token_encrypted=None, token_sha256=None, updated_at=utcnow())
        run_write(self.engine, lambda conn: conn.execute(stmt))

    def refuse_token(self, job_id: int, sha256: str, message: str) -> None:
        """Google refused the token whose SHA-256 is `sha256`: remember it, and drop it and wait for a
        fresh one unless a fresh one came in meanwhile (then the next pass uses that)."""
        now = utcnow()
        live = (_SJ.c.job_id == job_id, _SJ.c.state.not_in(FINAL_STATES))

        def op(conn: Connection) -> None:
            conn.execute(update(_SJ).where(*live).values(refused_token_sha256=sha256, updated_at=now))
            # The refused token is dropped; so is one stored before its SHA-256 was (no telling).
            same = or_(_SJ.c.token_sha256 == sha256, _SJ.c.token_sha256.is_(None))
            conn.execute(update(_SJ).where(*live, same).values(
                token_encrypted=None, token_sha256=None, state=WAITING, message=message[:MAX_TEXT_CHARS]))

        run_write(self.engine, op)

    def set_state(self, job_id: int, state: str, message: str | None, *, drop_token: bool = False) -> None:
        values: dict = dict(state=state, message=(message or None) and message[:MAX_TEXT_CHARS], updated_at=utcnow())
        if drop_token:
            values["token_encrypted"] = values["token_sha256"] = None

        def op(conn: Connection) -> None:
            # A final state is final: a late pass never revives a failed or finished job.
            conn.execute(update(_SJ).where(_SJ.c.job_id == job_id, _SJ.c.state.not_in(FINAL_STATES)).values(**values))

        run_write(self.engine, op)

    def rename(self, job_id: int, sheet_name: str) -> None:
        run_write(self.engine, lambda conn: conn.execute(
            update(_SJ).where(_SJ.c.job_id == job_id).values(sheet_name=sheet_name[:MAX_NAME_CHARS])))

    def claim_writing(self, job_id: int, lease_s: float) -> bool:
        now = utcnow()

        def op(conn: Connection) -> int:
            return conn.execute(
                update(_SJ)
                .where(_SJ.c.job_id == job_id, _SJ.c.state.not_in(FINAL_STATES),
                       or_(_SJ.c.writing_until.is_(None), _SJ.c.writing_until < now))
                .values(writing_until=now + timedelta(seconds=lease_s))
            ).rowcount

        return bool(run_write(self.engine, op))

    def release_writing(self, job_id: int) -> None:
        run_write(self.engine, lambda conn: conn.execute(
            update(_SJ).where(_SJ.c.job_id == job_id).values(writing_until=None)))

    def writing_busy(self, job_id: int) -> bool:
        with read_transaction(self.engine) as conn:
            until = conn.execute(select(_SJ.c.writing_until).where(_SJ.c.job_id == job_id)).scalar()
        return until is not None and as_utc(until) > utcnow()

    def ready(self, job_id: int, *, include_unenriched: bool) -> list[ReadyRow]:
        """Rows not settled yet, with their stored enrichment output (rows without one only if asked)."""
        stmt = (
            select(_SR.c.row_index, _SR.c.sheet_row, _SR.c.fingerprint, _SR.c.blank, _ER.c.person_id,
                   _ER.c.credits_charged, _ER.c.output, _ER.c.row_index.label("stored"))
            .select_from(_SR.outerjoin(_ER, and_(_ER.c.job_id == _SR.c.job_id, _ER.c.row_index == _SR.c.row_index)))
            .where(_SR.c.job_id == job_id, _SR.c.outcome.is_(None))
            .order_by(_SR.c.row_index)
        )
        if not include_unenriched:
            stmt = stmt.where(or_(_ER.c.row_index.is_not(None), _SR.c.blank))
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
        return [
            ReadyRow(r.row_index, r.sheet_row, r.fingerprint, r.blank,
                     None if r.stored is None else RowOutput.from_stored(r.row_index, r.person_id, r.credits_charged,
                                                                         r.output))
            for r in rows
        ]

    def count_ready(self, job_id: int) -> int:
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(func.count())
                .select_from(_SR.join(_ER, and_(_ER.c.job_id == _SR.c.job_id, _ER.c.row_index == _SR.c.row_index)))
                .where(_SR.c.job_id == job_id, _SR.c.outcome.is_(None), _SR.c.blank.is_(False))
            ).scalar_one()

    def expected(self, job_id: int) -> dict[int, str]:
        """Original sheet row -> fingerprint, of every row of the job that has identifiers."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_SR.c.sheet_row, _SR.c.fingerprint).where(_SR.c.job_id == job_id, _SR.c.blank.is_(False))
            ).all()
        return {r.sheet_row: r.fingerprint for r in rows}

    def person_credits(self, job_id: int, person_ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
        """Per person: credits the job's stored rows charged, and credits already shown in the sheet."""
        if not person_ids:
            return {}, {}
        joined = _SR.join(_ER, and_(_ER.c.job_id == _SR.c.job_id, _ER.c.row_index == _SR.c.row_index))
        charged: dict[int, int] = {}
        shown: dict[int, int] = {}
        ids = sorted(set(person_ids))
        with read_transaction(self.engine) as conn:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                for pid, c, s in conn.execute(
                    select(_ER.c.person_id, func.sum(_ER.c.credits_charged), func.sum(_SR.c.credits_shown))
                    .select_from(joined)
                    .where(_SR.c.job_id == job_id, _ER.c.person_id.in_(part))
                    .group_by(_ER.c.person_id)
                ):
                    charged[pid], shown[pid] = int(c or 0), int(s or 0)
        return charged, shown

    def settle(self, job_id: int, settled: Sequence[Settled]) -> None:
        """Record rows as settled; a row settled before (by a pass whose lease ran out) is left as it
        was and not counted again."""
        if not settled:
            return

        def op(conn: Connection) -> None:
            indexes = sorted({s.row_index for s in settled})
            open_rows: set[int] = set()
            for start in range(0, len(indexes), SETTLE_READ_ROWS):
                part = indexes[start : start + SETTLE_READ_ROWS]
                open_rows |= set(conn.execute(
                    select(_SR.c.row_index)
                    .where(_SR.c.job_id == job_id, one_of(conn, _SR.c.row_index, part), _SR.c.outcome.is_(None))
                    .with_for_update()
                ).scalars())
            todo = [s for s in settled if s.row_index in open_rows]
            if not todo:
                return
            written = sum(1 for s in todo if s.written_row is not None)
            params = [
                dict(p_job_id=job_id, p_row_index=s.row_index, p_outcome=s.outcome,
                     p_status=s.status and s.status[:MAX_TEXT_CHARS], p_credits_shown=s.credits_shown,
                     p_written_row=s.written_row, p_kept=s.kept)
                for s in todo
            ]
            conn.execute(_SETTLE_ROW, params)
            conn.execute(
                update(_SJ).where(_SJ.c.job_id == job_id)
                .values(rows_written=_SJ.c.rows_written + written, updated_at=utcnow())
            )

        run_write(self.engine, op)

    def counts(self, job_id: int) -> dict[str, int]:
        with read_transaction(self.engine) as conn:
            by_outcome = dict(
                conn.execute(
                    select(_SR.c.outcome, func.count()).where(_SR.c.job_id == job_id, _SR.c.outcome.is_not(None))
                    .group_by(_SR.c.outcome)
                ).all()
            )
            kept = conn.execute(
                select(func.count()).where(_SR.c.job_id == job_id, _SR.c.kept.is_(True))
            ).scalar_one()
        return {**{k: int(v) for k, v in by_outcome.items()}, "kept": int(kept)}

    def rows(self, job_id: int) -> list:
        with read_transaction(self.engine) as conn:
            return conn.execute(select(_SR).where(_SR.c.job_id == job_id).order_by(_SR.c.row_index)).all()

    def active(self, older_than: datetime | None = None) -> list[int]:
        """Jobs not over (that hold a token): what the periodic write pass looks at."""
        with read_transaction(self.engine) as conn:
            stmt = select(_SJ.c.job_id).where(_SJ.c.state.not_in(FINAL_STATES), _SJ.c.token_encrypted.is_not(None))
            if older_than is not None:
                stmt = stmt.where(_SJ.c.updated_at < older_than)
            return list(conn.execute(stmt.order_by(_SJ.c.job_id)).scalars())
