"""CRM sync for a team: connect, choose the pushed fields, sync, status, disconnect.

The token is encrypted at rest (SecretBox). Front ends call `CrmSyncs`; the schedule calls `sync_due`.

A sync: (1) pull the contacts changed since the cursor (core/crm/pull.py); (2) buy, through data
requests and within the spend cap, the emails and mobiles the CRM lacks (core/crm/credits.py);
(3) push what the team may see into the mapped properties (core/crm/push.py). A dry run reads the
CRM and the database and writes to neither: it says what the sync would charge at most.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from core.accounts import Accounts, MemberInfo, TeamInfo
from core.contributions import contacts_with_updates
from core.crm.connector import CrmConnector
from core.crm.credits import plan_access, run_access
from core.crm.fields import DEFAULT_FIELD_MAP, check_field_map, custom_properties, pull_properties
from core.crm.pull import PullCounts, Puller
from core.crm.push import PushCounts, plan_updates, push_batch
from core.crm.records import REC, WR, RecordRow, linked_records, mark_yielded, records_by_crm_id, writes_for
from core.crm.values import known_values, people_with_news
from core.errors import AccessDenied, InvalidInput, NotFound, TributaryError
from storage.db import read_transaction, run_write
from storage.models import CrmConnection
from storage.timeutil import as_utc, utcnow

if TYPE_CHECKING:
    from core.contributions import Contributions
    from core.data_requests import DataRequests
    from core.secrets import SecretBox
    from core.team_contacts.service import TeamContacts

log = logging.getLogger(__name__)
CONN = CrmConnection.__table__
KINDS = ("hubspot",)
PUSH_CHUNK = 1000  # linked contacts planned at a time
MAX_TOKEN_CHARS = 1024

# Changes committed while the last sync ran may carry a timestamp a little before its end.
_NEWS_MARGIN = timedelta(minutes=5)

MakeConnector = Callable[[str, str], CrmConnector]  # (kind, token) -> connector


@dataclass(frozen=True)
class SyncProgress:
    phase: str  # pull | access | push
    done: int
    total: int


@dataclass(frozen=True)
class SyncSummary:
    team: str
    dry_run: bool
    pulled: dict[str, int]
    credits_charged: int
    credits_cap: int
    max_credits: int  # what the access step could charge at most (a dry run's "would charge")
    requests: int  # data requests made (or, in a dry run, that would be)
    requests_over_cap: int  # left out: the cap would not cover them
    pushed: dict[str, int]
    pushed_by_field: dict[str, int]
    api_calls: int
    cursor_ms: int


@dataclass(frozen=True)
class CrmStatus:
    team: str
    kind: str
    member: str
    field_map: dict[str, str]
    max_credits_per_sync: int
    cursor_ms: int
    records: int
    linked: int
    last_sync_at: datetime | None
    last_sync: dict = field(default_factory=dict)


@dataclass
class _Run:
    """One sync's state: its cap (spent down as it goes) and its counts."""

    syncs: CrmSyncs
    team: TeamInfo
    member: MemberInfo
    crm: CrmConnector
    mapping: dict[str, str]
    cap: int
    dry_run: bool
    progress: Callable[[SyncProgress], None]
    charged: int = 0
    max_credits: int = 0
    requests: int = 0
    over_cap: int = 0
    pushed: PushCounts = field(default_factory=PushCounts)
    _moved: set[int] | None = None

    def with_news(self, records: list[RecordRow], since: datetime) -> list[RecordRow]:
        """The records whose person has news since the last sync, or a job change to flag (the rest
        were pushed then, or page by page just now when the CRM side changed)."""
        with read_transaction(self.syncs.engine) as conn:
            news = people_with_news(conn, self.team.id, sorted({r.person_id for r in records if r.person_id}), since)
        updates = contacts_with_updates(self.syncs.engine, self.team.id)
        self._moved = {u.person_id for u in updates if u.person_id is not None}
        return [r for r in records if r.person_id in news or r.person_id in self._moved]

    def settle(self, records: list[RecordRow], buy_for: list[RecordRow] | None = None) -> None:
        """Buy what the rest of the cap allows for `buy_for` (default: these contacts), then push to
        these contacts and to those bought for."""
        engine = self.syncs.engine
        pool = records if buy_for is None else buy_for
        if pool is not records and self.cap <= self.max_credits:
            pool = records  # nothing left to buy with: do not scan every contact for it
        with read_transaction(engine) as conn:
            plan = plan_access(conn, self.team, pool, self.mapping, self.cap - self.max_credits)
        bought = {*plan.emails, *plan.mobiles}
        if bought and pool is not records:
            pushing = {r.crm_id for r in records}
            records = records + [r for r in pool if r.person_id in bought and r.crm_id not in pushing]
        self.max_credits += plan.max_credits
        self.requests += len(plan.emails) + len(plan.mobiles)
        self.over_cap = max(self.over_cap, plan.skipped_for_cap)
        if not self.dry_run and (plan.emails or plan.mobiles):
            self.charged += run_access(self.syncs.data_requests, self.team, self.member, plan).charged_credits
        if self._moved is None:
            updates = contacts_with_updates(engine, self.team.id)
            self._moved = {u.person_id for u in updates if u.person_id is not None}
        self._push(records)

    def _push(self, records: list[RecordRow]) -> None:
        engine, counts = self.syncs.engine, self.pushed
        field_of = {prop: fld for fld, prop in self.mapping.items()}
        for i in range(0, len(records), PUSH_CHUNK):
            chunk = records[i : i + PUSH_CHUNK]
            with read_transaction(engine) as conn:
                known = known_values(conn, self.team.id, sorted({r.person_id for r in chunk}), self._moved or set())
                writes = writes_for(conn, [r.id for r in chunk if r.id])
            planned, yielded = plan_updates(chunk, known, self.mapping, writes)
            if self.dry_run:
                counts.contacts_updated += len(planned)
                counts.values_written += sum(len(u.values) for u in planned)
                continue
            if yielded:
                counts.kept_person_edits += len(yielded)
                run_write(engine, lambda conn, y=yielded: mark_yielded(conn, y))
            for j in range(0, len(planned), self.crm.batch_limit):
                push_batch(engine, self.crm, planned[j : j + self.crm.batch_limit], writes, counts, field_of)


@dataclass
class CrmSyncs:
    engine: object
    accounts: Accounts
    contributions: Contributions
    team_contacts: TeamContacts
    data_requests: DataRequests
    secret_box: Callable[[], SecretBox]
    make_connector: MakeConnector
    cursor_overlap_s: int = 60
    sync_interval: timedelta = timedelta(hours=1)

    # ---- the connection ---------------------------------------------------------------------------

    def connect(self, team_ref: int | str, kind: str, token: str, *, member: int | str | None = None,
                max_credits_per_sync: int = 0) -> CrmStatus:  # fmt: skip
        """Check the token against the CRM (it must list and create properties), then store it encrypted."""
        team = self.accounts.team(team_ref)
        if kind not in KINDS:
            raise InvalidInput(f"CRM {kind!r}: not one of {', '.join(KINDS)}")
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidInput(f"token: must be 1 to {MAX_TOKEN_CHARS} characters")
        if max_credits_per_sync < 0:
            raise InvalidInput("--max-credits-per-sync: must not be negative")
        who = self._admin(team.id, member)
        self.make_connector(kind, token).ensure_properties(custom_properties(DEFAULT_FIELD_MAP))
        sealed = self.secret_box().encrypt(token)

        def op(conn) -> None:
            values = dict(
                kind=kind, token_encrypted=sealed, member_id=who.id, max_credits_per_sync=max_credits_per_sync
            )
            if conn.execute(select(CONN.c.id).where(CONN.c.team_id == team.id)).first():
                conn.execute(update(CONN).where(CONN.c.team_id == team.id).values(**values))
            else:
                conn.execute(CONN.insert().values(
                    team_id=team.id, field_map=dict(DEFAULT_FIELD_MAP), properties_ready=True,
                    cursor_modified_ms=0, last_sync={}, created_at=utcnow(), **values,
                ))  # fmt: skip

        run_write(self.engine, op)
        return self.status(team.id)

    def set_fields(self, team_ref: int | str, changes: Mapping[str, str]) -> CrmStatus:
        """Change where fields go (FIELD -> property; "" or "-" stops pushing it)."""
        team = self.accounts.team(team_ref)
        row = self._row(team.id)
        merged = {**row.field_map, **{k: v for k, v in changes.items()}}
        mapping = check_field_map(merged)
        run_write(self.engine, lambda conn: conn.execute(
            update(CONN).where(CONN.c.id == row.id).values(field_map=mapping, properties_ready=False)
        ))  # fmt: skip
        return self.status(team.id)

    def status(self, team_ref: int | str) -> CrmStatus:
        team = self.accounts.team(team_ref)
        row = self._row(team.id)
        with read_transaction(self.engine) as conn:
            records = conn.execute(select(func.count()).where(REC.c.connection_id == row.id)).scalar_one()
            linked = conn.execute(
                select(func.count()).where(REC.c.connection_id == row.id, REC.c.person_id.is_not(None))
            ).scalar_one()
        member = self.accounts.member(row.member_id, team.id)
        return CrmStatus(
            team.name, row.kind, member.email, dict(row.field_map), row.max_credits_per_sync, row.cursor_modified_ms,
            records, linked, as_utc(row.last_sync_at) if row.last_sync_at else None, dict(row.last_sync or {}),
        )  # fmt: skip

    def disconnect(self, team_ref: int | str) -> int:
        """Forget the connection, its token and its bookkeeping; the contacts it brought stay the team's."""
        team = self.accounts.team(team_ref)
        row = self._row(team.id)

        def op(conn) -> int:
            ids = select(REC.c.id).where(REC.c.connection_id == row.id)
            conn.execute(delete(WR).where(WR.c.record_id.in_(ids)))
            gone = conn.execute(delete(REC).where(REC.c.connection_id == row.id)).rowcount
            conn.execute(delete(CONN).where(CONN.c.id == row.id))
            return gone

        return run_write(self.engine, op)

    def _row(self, team_id: int):
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(CONN).where(CONN.c.team_id == team_id)).one_or_none()
        if row is None:
            raise NotFound("this team has no CRM connected (tributary crm connect TEAM hubspot --token-env VAR)")
        return row

    def _admin(self, team_id: int, ref: int | str | None) -> MemberInfo:
        if ref is not None:
            who = self.accounts.member(ref, team_id)
            if not who.is_admin:
                raise AccessDenied(f"{who.email} is not an admin of the team: only an admin connects a CRM")
            return who
        admins = [m for m in self.accounts.members(team_id) if m.is_admin]
        if not admins:
            raise InvalidInput("the team has no admin to connect the CRM as; add one or pass --member")
        return admins[0]

    # ---- syncing ----------------------------------------------------------------------------------

    def sync(self, team_ref: int | str, *, dry_run: bool = False, max_credits: int | None = None,
             on_progress: Callable[[SyncProgress], None] | None = None) -> SyncSummary:  # fmt: skip
        team = self.accounts.team(team_ref)
        row = self._row(team.id)
        if max_credits is not None and max_credits < 0:
            raise InvalidInput("--max-credits: must not be negative")
        crm = self.make_connector(row.kind, self.secret_box().decrypt(row.token_encrypted))
        mapping = dict(row.field_map)
        if not row.properties_ready and not dry_run:
            crm.ensure_properties(custom_properties(mapping))
            ready = update(CONN).where(CONN.c.id == row.id).values(properties_ready=True)
            run_write(self.engine, lambda c: c.execute(ready))
        run = _Run(
            self, team, self.accounts.member(row.member_id, team.id), crm, mapping,
            row.max_credits_per_sync if max_credits is None else max_credits, dry_run, on_progress or (lambda p: None),
        )  # fmt: skip
        pulled, cursor, preview = self._pull(row, run)
        # Then everything linked: contacts unchanged in the CRM may have news from our side (an
        # access, a job change); those pushed page by page above are up to date and cost no call.
        records = self._linked(row.id)
        if preview:
            fresh = {r.crm_id for r in preview}
            records = [r for r in records if r.crm_id not in fresh] + preview
        to_push = records
        if row.last_sync_at is not None and not preview:
            to_push = run.with_news(records, as_utc(row.last_sync_at) - _NEWS_MARGIN)
        run.settle(to_push, buy_for=records)
        summary = SyncSummary(
            team.name, dry_run, asdict(pulled), run.charged, run.cap, run.max_credits, run.requests, run.over_cap,
            {k: v for k, v in asdict(run.pushed).items() if k != "by_field"}, dict(run.pushed.by_field), crm.calls,
            cursor,
        )  # fmt: skip
        if not dry_run:
            run_write(self.engine, lambda c: c.execute(update(CONN).where(CONN.c.id == row.id).values(
                last_sync_at=utcnow(), last_sync=asdict(summary))))  # fmt: skip
        return summary

    def _pull(self, row, run: _Run) -> tuple[PullCounts, int, list]:
        puller = Puller(
            self.engine, row.id, run.member, tuple(sorted(set(run.mapping.values()))), self.contributions,
            self.team_contacts, run.dry_run,
        )  # fmt: skip
        counts = PullCounts()
        cursor = row.cursor_modified_ms
        # Re-read a little before the cursor: a search index lags writes by seconds, and a contact
        # written just before the last pull may only show up now. Unchanged ones are skipped cheaply.
        start = max(0, cursor - self.cursor_overlap_s * 1000)
        for page in run.crm.changed_since(start, pull_properties(run.mapping), page_size=200):
            puller.page(page.contacts, counts)
            cursor = max(cursor, page.contacts[-1].modified_ms)
            if not run.dry_run:
                run_write(self.engine, lambda c, at=cursor: c.execute(
                    update(CONN).where(CONN.c.id == row.id).values(cursor_modified_ms=at)))  # fmt: skip
                # Push this page now: its reads and writes then share the rate limit's waits with
                # the next pages' matching instead of queueing after the whole pull.
                with read_transaction(self.engine) as conn:
                    known = records_by_crm_id(conn, row.id, [c.id for c in page.contacts])
                run.settle([r for r in known.values() if r.person_id is not None])
            run.progress(SyncProgress("pull", counts.read, counts.read + page.remaining))
        return counts, cursor, puller.preview

    def _linked(self, connection_id: int):
        out, after = [], 0
        with read_transaction(self.engine) as conn:
            while chunk := linked_records(conn, connection_id, after, PUSH_CHUNK * 10):
                out.extend(chunk)
                after = chunk[-1].id
        return out

    # ---- the schedule -------------------------------------------------------------------------------

    def sync_due(self, now: datetime | None = None) -> list[str]:
        """Sync every connection whose last sync is older than the interval; one failing team (a
        revoked token) never stops the others. Returns the teams synced."""
        at = as_utc(now) if now else utcnow()
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(CONN.c.team_id, CONN.c.last_sync_at)).all()
        done = []
        for team_id, last in rows:
            if last is not None and as_utc(last) + self.sync_interval > at:
                continue
            try:
                self.sync(team_id)
                done.append(self.accounts.team(team_id).name)
            except TributaryError as exc:
                log.warning("crm sync of team %s failed: %s", team_id, exc)
        return done
