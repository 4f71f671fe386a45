"""Bounce intake: every bounce that arrives (mailbox, file, webhook) is stored, then decided.

Storage first, always: the raw message (or webhook body) goes into `bounce_intake` whether it parses
or not, so nothing is lost; a message that cannot be read is kept with status `unparseable` and its
error. Each failed recipient becomes one `bounce` row whose dedupe key is the bounce's own
Message-ID (or, when it has none, a hash of the raw message), the send it proves and the recipient:
the same DSN delivered three times is one bounce, and a forged one cannot take a genuine one's key.
The proof is read here and stored with the bounce: the send a valid VERP token names (core.bounces.
verp) and, for a webhook event, the team whose secret signed it. Then each new bounce is matched to
its send and decided (core.bounces.refunds); a bounce no send matches is kept, with why, and listed by
`unmatched`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.bounces.parse import BounceClass, BounceParseError, parse_bounce
from core.bounces.refunds import BounceOutcome, Refunds
from core.bounces.verp import proven_send_ids, token_send_id
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import Bounce, BounceIntake, EmailSend
from storage.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_I = BounceIntake.__table__
_B = Bounce.__table__
_S = EmailSend.__table__

MAX_SOURCE_REF = 500
MAX_ERROR = 500


class IntakeSource:
    IMAP = "imap"
    FILE = "file"
    WEBHOOK = "webhook"


class IntakeStatus:
    PARSED = "parsed"
    NO_RECIPIENT = "no_recipient"  # readable, but names no failed recipient (kept, reported)
    UNPARSEABLE = "unparseable"


@dataclass(frozen=True)
class BounceEvent:
    """One bounce reported by an email-sending service's webhook."""

    recipient: str
    message_id: str | None
    bounce_class: BounceClass
    diagnostic: str | None = None
    status_code: str | None = None
    reason: str | None = None
    verp_token: str | None = None  # the token of the send's envelope sender, when the service reports it


@dataclass(frozen=True)
class IntakeResult:
    intake_id: int
    status: str
    duplicate: bool  # these exact bytes had arrived before
    bounce_ids: tuple[int, ...]
    outcomes: tuple[BounceOutcome, ...]
    error: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class UnmatchedBounce:
    id: int
    recipient: str
    bounce_class: str
    status_code: str | None
    diagnostic: str | None
    message_id: str | None
    source: str
    source_ref: str | None
    received_at: datetime
    refusal: str | None  # why it matches no send (core.bounces.matching.MatchRefusal)


@dataclass(frozen=True)
class _NewBounce:
    dedupe_key: str
    recipient: str
    bounce_class: str
    status_code: str | None
    reason: str | None
    diagnostic: str | None
    message_id: str | None
    proven_send_id: int | None = None
    team_id: int | None = None


class BounceIntakeService:
    def __init__(self, engine: Engine, refunds: Refunds, *, verp_key: str | None = None) -> None:
        self.engine = engine
        self.refunds = refunds
        self.verp_key = verp_key  # None: no DSN can prove its send (sends carry no token)

    def ingest_message(
        self,
        raw: bytes,
        *,
        source: str,
        source_ref: str | None = None,
        now: datetime | None = None,
        decide: bool = True,
    ) -> IntakeResult:
        """Store one raw bounce message and decide its bounces (unless `decide` is False: then the
        scheduler's `process_pending` does). Bad input is stored, not raised."""
        now = as_utc(now or utcnow())
        raw = bytes(raw)
        digest = hashlib.sha256(raw).hexdigest()
        try:
            report = parse_bounce(raw)
        except BounceParseError as exc:
            return self._store(raw, digest, source, source_ref, IntakeStatus.UNPARSEABLE, [], now, exc.code, str(exc))
        received_at = _received_at(raw, now)
        proven = self._proven_send(raw)
        key_base = f"mid:{report.bounce_message_id}" if report.bounce_message_id else f"sha256:{digest}"
        bounces = [
            _NewBounce(
                dedupe_key=f"{key_base}|send:{proven}|{r.address}"[:400],
                recipient=r.address,
                bounce_class=r.bounce_class.value,
                status_code=r.status,
                reason=r.reason,
                diagnostic=r.diagnostic,
                message_id=report.message_id,
                proven_send_id=proven,
            )
            for r in report.recipients
        ]
        status = IntakeStatus.PARSED if bounces else IntakeStatus.NO_RECIPIENT
        note = None if bounces else report.reason
        return self._store(
            raw, digest, source, source_ref, status, bounces, received_at, None, note, now, decide=decide
        )

    def ingest_event(
        self,
        event: BounceEvent,
        raw_body: bytes,
        *,
        team_id: int,
        source: str = IntakeSource.WEBHOOK,
        now: datetime | None = None,
    ) -> IntakeResult:
        """Store one validated webhook event signed with team `team_id`'s secret, and decide it."""
        now = as_utc(now or utcnow())
        digest = hashlib.sha256(raw_body).hexdigest()
        recipient = event.recipient.strip().lower()
        proven = token_send_id(self.verp_key, event.verp_token) if self.verp_key and event.verp_token else None
        ref = event.message_id or event.verp_token or "sha256:" + digest
        bounce = _NewBounce(
            dedupe_key=f"event:team:{team_id}|{ref}|{recipient}|{event.bounce_class}"[:400],
            recipient=recipient,
            bounce_class=BounceClass(event.bounce_class).value,
            status_code=event.status_code,
            reason=event.reason,
            diagnostic=(event.diagnostic or None) and event.diagnostic[:500],
            message_id=event.message_id,
            proven_send_id=proven,
            team_id=team_id,
        )
        return self._store(raw_body, digest, source, None, IntakeStatus.PARSED, [bounce], now, None, None)

    def record_unparseable(
        self,
        raw: bytes,
        *,
        source: str,
        error_code: str,
        error: str,
        source_ref: str | None = None,
        now: datetime | None = None,
    ) -> IntakeResult:
        """Keep input that was refused (a webhook body with a bad field, ...) with the reason."""
        now = as_utc(now or utcnow())
        digest = hashlib.sha256(raw).hexdigest()
        return self._store(raw, digest, source, source_ref, IntakeStatus.UNPARSEABLE, [], now, error_code, error)

    def unmatched(self, limit: int = 1000) -> list[UnmatchedBounce]:
        """Bounces that were processed and match no send of ours: kept and reported, never dropped."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_B, _I.c.source, _I.c.source_ref)
                .join(_I, _I.c.id == _B.c.intake_id)
                .where(_B.c.send_id.is_(None), _B.c.processed_at.is_not(None))
                .order_by(_B.c.id)
                .limit(limit)
            ).all()
        return [
            UnmatchedBounce(
                id=r.id,
                recipient=r.recipient,
                bounce_class=r.bounce_class,
                status_code=r.status_code,
                diagnostic=r.diagnostic,
                message_id=r.message_id,
                source=r.source,
                source_ref=r.source_ref,
                received_at=as_utc(r.received_at),
                refusal=r.match_refusal,
            )
            for r in rows
        ]

    def intake_rows(self, *, status: str | None = None) -> list[tuple[int, str, str, str | None, str | None]]:
        """(id, source, status, error_code, error) of stored intake, oldest first."""
        with read_transaction(self.engine) as conn:
            stmt = select(_I.c.id, _I.c.source, _I.c.status, _I.c.error_code, _I.c.error).order_by(_I.c.id)
            if status is not None:
                stmt = stmt.where(_I.c.status == status)
            return [tuple(r) for r in conn.execute(stmt)]

    # ---- internals -----------------------------------------------------------------------

    def _store(
        self,
        raw: bytes,
        digest: str,
        source: str,
        source_ref: str | None,
        status: str,
        bounces: list[_NewBounce],
        received_at: datetime,
        error_code: str | None,
        error: str | None,
        now: datetime | None = None,
        *,
        decide: bool = True,
    ) -> IntakeResult:
        now = now or received_at
        insert = sqlite_insert if is_sqlite(self.engine) else pg_insert

        def op(conn: Connection) -> tuple[int, bool, list[int]]:
            intake_id, duplicate = _insert_intake(
                conn,
                insert,
                source=source,
                source_ref=source_ref,
                digest=digest,
                raw=raw,
                status=status,
                error_code=error_code,
                error=error,
                received_at=received_at,
            )
            return intake_id, duplicate, _insert_bounces(conn, insert, intake_id, bounces, received_at)

        intake_id, duplicate, bounce_ids = run_write(self.engine, op)
        if status == IntakeStatus.UNPARSEABLE:
            log.warning("bounce intake %s from %s kept as unparseable: %s", intake_id, source, error_code)
        # Deciding is idempotent, so a duplicate delivery re-runs it harmlessly (and finishes the
        # work of a worker that died after storing).
        outcomes = tuple(self.refunds.process_bounce(bounce_id, now=now) for bounce_id in bounce_ids) if decide else ()
        return IntakeResult(intake_id, status, duplicate, tuple(bounce_ids), outcomes, error, error_code)


    def _proven_send(self, raw: bytes) -> int | None:
        """The one send a valid VERP token in the message proves (two different ones prove nothing)."""
        if not self.verp_key:
            return None
        ids = proven_send_ids(self.verp_key, raw)
        return next(iter(ids)) if len(ids) == 1 else None


def _received_at(raw: bytes, now: datetime) -> datetime:
    """When the bounce was written (its Date header), never later than now; else now.

    The recipient-window match measures from here, so a poller that was down for a day still
    matches the sends the bounce is about."""
    try:
        headers = BytesHeaderParser().parsebytes(raw[:65536])
        value = headers.get("date")
        when = as_utc(parsedate_to_datetime(str(value))) if value else None
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None or when > now:
        return now
    return when


__all__ = [
    "BounceEvent",
    "BounceIntakeService",
    "IntakeResult",
    "IntakeSource",
    "IntakeStatus",
    "UnmatchedBounce",
]


def _insert_intake(
    conn: Connection,
    insert: Any,
    *,
    source: str,
    source_ref: str | None,
    digest: str,
    raw: bytes,
    status: str,
    error_code: str | None,
    error: str | None,
    received_at: datetime,
) -> tuple[int, bool]:
    """Store one delivery once (by its SHA-256); a repeat only counts. Returns (id, was it a repeat)."""
    inserted = conn.execute(
        insert(_I)
        .values(
            source=source,
            source_ref=(source_ref or None) and source_ref[:MAX_SOURCE_REF],
            raw_sha256=digest,
            raw=raw,
            status=status,
            error_code=error_code,
            error=(error or None) and error[:MAX_ERROR],
            times_received=1,
            received_at=received_at,
        )
        .on_conflict_do_nothing(index_elements=["raw_sha256"])
        .returning(_I.c.id)
    ).scalar()
    if inserted is not None:
        return inserted, False
    intake_id = conn.execute(select(_I.c.id).where(_I.c.raw_sha256 == digest)).scalar_one()
    conn.execute(update(_I).where(_I.c.id == intake_id).values(times_received=_I.c.times_received + 1))
    return intake_id, True


def _insert_bounces(
    conn: Connection, insert: Any, intake_id: int, bounces: list[_NewBounce], received_at: datetime
) -> list[int]:
    """Store a delivery's bounces once each (by dedupe key); returns the ids of all of them, old and new."""
    # A token valid under the key but naming no send here (another deployment's) proves nothing.
    claimed = {b.proven_send_id for b in bounces if b.proven_send_id is not None}
    known = set(conn.execute(select(_S.c.id).where(_S.c.id.in_(claimed))).scalars()) if claimed else set()
    for b in bounces:
        conn.execute(
            insert(_B)
            .values(
                intake_id=intake_id,
                dedupe_key=b.dedupe_key,
                recipient=b.recipient,
                bounce_class=b.bounce_class,
                status_code=b.status_code,
                reason=b.reason,
                diagnostic=b.diagnostic,
                message_id=b.message_id,
                received_at=received_at,
                proven_send_id=b.proven_send_id if b.proven_send_id in known else None,
                team_id=b.team_id,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
    keys = [b.dedupe_key for b in bounces]
    return list(conn.execute(select(_B.c.id).where(_B.c.dedupe_key.in_(keys)).order_by(_B.c.id)).scalars().all())
