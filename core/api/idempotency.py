"""Idempotency keys for charging API calls (Stripe's model).

The first request with a key records the hash of its method, path and body and a lease; when it
answers 2xx its response is stored, and every later request with that key and the same hash gets the
stored response back (nothing is charged again). The same key with another body is a conflict. A
request arriving while the first is still running waits for its answer (up to the lease), so
concurrent retries see one response. A non-2xx answer is not stored: the key is released, so the
client may retry once the cause is fixed (e.g. credits topped up).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.errors import InvalidInput, TributaryError
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import ApiIdempotency
from storage.timeutil import as_utc, utcnow

_IDEM = ApiIdempotency.__table__
MAX_IDEMPOTENCY_KEY_CHARS = 255
DEFAULT_LEASE_S = 120
WAIT_POLL_S = 0.05


class IdempotencyKeyConflict(TributaryError):
    """The key was used for another request, or its first request is still running."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict


@dataclass(frozen=True)
class IdempotencyClaim:
    """Either this request owns the key (`record_id`) or it gets the first request's `replay`."""

    record_id: int | None
    replay: StoredResponse | None


def request_hash(method: str, path: str, body: object) -> str:
    canonical = json.dumps({"m": method, "p": path, "b": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, engine: Engine, *, lease_s: int = DEFAULT_LEASE_S) -> None:
        self.engine = engine
        self.lease_s = lease_s
        insert = sqlite_insert if is_sqlite(engine) else pg_insert
        self._insert = (
            insert(_IDEM).on_conflict_do_nothing(index_elements=["api_key_id", "idem_key"]).returning(_IDEM.c.id)
        )

    def claim(self, api_key_id: int, key: str, body_hash: str) -> IdempotencyClaim:
        key = key.strip()
        if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise InvalidInput(f"Idempotency-Key: give 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")
        deadline = time.monotonic() + self.lease_s
        while True:
            claim = run_write(self.engine, lambda conn: self._try_claim(conn, api_key_id, key, body_hash))
            if claim is not None:
                return claim
            if time.monotonic() > deadline:
                raise IdempotencyKeyConflict(f"Idempotency-Key {key!r}: the first request with it is still running")
            time.sleep(WAIT_POLL_S)  # the first request is running: wait for its answer

    def _try_claim(self, conn, api_key_id: int, key: str, body_hash: str) -> IdempotencyClaim | None:
        now = utcnow()
        lease = now + timedelta(seconds=self.lease_s)
        # RETURNING says whether this insert made the row (rowcount is not portable with RETURNING).
        record_id = conn.execute(
            self._insert.values(
                api_key_id=api_key_id, idem_key=key, request_hash=body_hash, lease_until=lease, created_at=now
            )
        ).scalar_one_or_none()
        if record_id is not None:
            return IdempotencyClaim(record_id, None)
        row = conn.execute(
            select(_IDEM).where(_IDEM.c.api_key_id == api_key_id, _IDEM.c.idem_key == key)
        ).one_or_none()
        if row is None:
            return None  # released between our insert and read: try again
        if row.request_hash != body_hash:
            raise IdempotencyKeyConflict(f"Idempotency-Key {key!r} was already used with a different request")
        if row.response_status is not None:
            return IdempotencyClaim(None, StoredResponse(row.response_status, json.loads(row.response_body)))
        if row.lease_until is not None and as_utc(row.lease_until) > now:
            return None
        # The first request's process died before answering: take the key over.
        conn.execute(update(_IDEM).where(_IDEM.c.id == row.id).values(lease_until=lease))
        return IdempotencyClaim(row.id, None)

    def complete(self, record_id: int, status: int, body: dict) -> None:
        """Store a 2xx answer for replays; release the key for anything else."""
        if 200 <= status < 300:
            text = json.dumps(body, separators=(",", ":"))
            stmt = update(_IDEM).where(_IDEM.c.id == record_id).values(
                response_status=status, response_body=text, lease_until=None
            )
        else:
            stmt = delete(_IDEM).where(_IDEM.c.id == record_id)
        run_write(self.engine, lambda conn: conn.execute(stmt))

    def stored(self, api_key_id: int, key: str) -> StoredResponse | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(_IDEM).where(_IDEM.c.api_key_id == api_key_id, _IDEM.c.idem_key == key)
            ).one_or_none()
        if row is None or row.response_status is None:
            return None
        return StoredResponse(row.response_status, json.loads(row.response_body))
