"""Sync a connected mailbox: read new messages, turn the people they name into contributions.

Per run: EXAMINE the folder, read the messages above the stored cursor in chunks; per chunk, the
business people named (free webmail, role, disposable and member-private addresses skipped; the
member's own address too) go to Contributions with source `mailbox` and provenance `mailbox:<id>`
(so a disconnect can take back what only this mailbox supplied), then the cursor moves. Most facts
confirm shared data; anything new stays team-private until verified or corroborated (the
contribution rules). A member who opted out contributes nothing and feeds no shared aggregate;
their mailbox still serves reply tracking for their own team only when the team and member
contribute (engagement writes shared statuses). Bodies and subjects never leave this process.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.errors import MessageError

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.accounts import Accounts
from core.contributions import ContactRecord, Contributions
from core.errors import InvalidInput, TributaryError
from core.mailboxes.connections import Mailboxes, MailboxInfo
from core.mailboxes.extract import MessageFacts, SeenPerson, read_message
from core.mailboxes.imap import ImapReader
from core.mailboxes.providers import MxLookup
from core.mailboxes.revoke import mailbox_source
from core.mailboxes.signatures import safe_domain
from core.normalize.emails import normalize_email
from storage.db import is_sqlite, run_write
from storage.models import DomainEmailProvider, MailboxConnection
from storage.models.contributor import SourceKind
from storage.timeutil import utcnow

log = logging.getLogger(__name__)

SYNC_CHUNK_MESSAGES = 100  # messages per contribution transaction batch and cursor step
_BOX = MailboxConnection.__table__
_PROVIDER = DomainEmailProvider.__table__

# on_reply(from_address, in_reply_to, references, received_at): the engagement service's hook.
ReplyHook = Callable[[str, str | None, tuple[str, ...], datetime | None], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SyncResult:
    messages: int
    people: int  # distinct business people offered to the contributor pipeline
    skipped_personal: int  # free webmail, role and disposable addresses
    skipped_private: int
    candidates: int
    shared: int
    corroborated: int
    duplicates: int
    replies: int
    providers: int  # per-domain provider facts recorded
    contributed: bool  # false: the team or the member opted out


@dataclass
class _Run:
    box: MailboxInfo
    at: datetime
    team_contributes: bool
    own: frozenset[str]
    private: frozenset[str]
    totals: Counter = field(default_factory=Counter)
    domains: dict[str, str | None] = field(default_factory=dict)  # sender domain -> provider from headers

    @property
    def contributes(self) -> bool:
        """Whether anything may reach shared tables (contributions re-check the team per batch)."""
        return self.team_contributes and self.box.contribute


@dataclass
class _Chunk:
    people: dict[str, ContactRecord]
    personal: int = 0
    private: int = 0


class MailboxSync:
    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        mailboxes: Mailboxes,
        contributions: Contributions,
        mx: MxLookup | None,
        *,
        max_messages: int,
        mx_lookups: int,
        phone_region: str = "US",
        on_reply: ReplyHook | None = None,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.contributions = contributions
        self.mx = mx
        self.max_messages = max_messages
        self.mx_lookups = mx_lookups
        self.phone_region = phone_region
        self.on_reply = on_reply

    def sync(
        self, team: int | str, member: int | str, *, progress: Progress | None = None, now: datetime | None = None
    ) -> SyncResult:
        """Read the mailbox's new messages over IMAP (read-only) and ingest them, chunk by chunk; the
        cursor moves after each chunk, so a run that dies resumes where it stopped."""
        run = self._start(team, member, now)
        with ImapReader(self.mailboxes.account(run.box.id)) as reader:
            cursor = _cursor(self.engine, run.box.id)
            state = reader.folder_state(*cursor)
            uids = list(state.new_uids[: self.max_messages])
            if progress:
                progress(0, len(uids))
            for start in range(0, len(uids), SYNC_CHUNK_MESSAGES):
                batch = uids[start : start + SYNC_CHUNK_MESSAGES]
                self._ingest(run, [raw for _, raw in reader.fetch(batch)])
                _advance(self.engine, run.box.id, state.uid_validity, batch[-1], len(batch), run.at)
                if progress:
                    progress(run.totals["messages"], len(uids))
            if not uids:
                _advance(self.engine, run.box.id, state.uid_validity, cursor[1], 0, run.at)
        return self._finish(run)

    def ingest_messages(
        self, team: int | str, member: int | str, messages: list[bytes], *, now: datetime | None = None
    ) -> SyncResult:
        """What a sync does with messages, for messages already at hand (no IMAP, no cursor)."""
        run = self._start(team, member, now)
        for start in range(0, len(messages), SYNC_CHUNK_MESSAGES):
            self._ingest(run, messages[start : start + SYNC_CHUNK_MESSAGES])
        return self._finish(run)

    def _start(self, team: int | str, member: int | str, now: datetime | None) -> _Run:
        box = self.mailboxes.mailbox(team, member)
        return _Run(
            box=box,
            at=now or utcnow(),
            team_contributes=self.accounts.team(box.team_id).contribute,
            own=frozenset({box.member_email.lower(), box.username.lower()}),
            private=self.mailboxes.private_values(box.member_id),
        )

    def _ingest(self, run: _Run, raws: list[bytes]) -> None:
        facts = [f for f in (self._read(raw) for raw in raws) if f is not None]
        chunk = self._people(facts, run.own, run.private)
        self._contribute(run.box, chunk, run.at, run.totals)
        run.totals["replies"] += self._replies(facts, run.private, run.contributes)
        for f in facts:
            if f.sender and _business(f.sender):
                domain = safe_domain(f.sender.rsplit("@", 1)[1])
                if domain and not _is_private(f.sender, run.private):
                    run.domains.setdefault(domain, f.sender_provider)
        run.totals["messages"] += len(raws)

    def _finish(self, run: _Run) -> SyncResult:
        providers = self._providers(run.domains, run.at) if run.contributes else 0
        t = run.totals
        return SyncResult(
            messages=t["messages"], people=t["people"], skipped_personal=t["personal"], skipped_private=t["private"],
            candidates=t["candidates"], shared=t["shared"], corroborated=t["corroborated"],
            duplicates=t["duplicates"], replies=t["replies"], providers=providers, contributed=run.contributes,
        )

    def sync_all(self) -> int:
        """Sync every connected mailbox (the periodic task); one that fails is logged and skipped."""
        done = 0
        for team_id, member_id in self.mailboxes.all_ids():
            try:
                self.sync(team_id, member_id)
                done += 1
            except TributaryError as exc:
                log.warning("mailbox of member %s: sync failed: %s", member_id, exc)
        return done

    def _read(self, raw: bytes) -> MessageFacts | None:
        try:
            return read_message(raw, self.phone_region)
        except (ValueError, TypeError, IndexError, LookupError, MessageError):
            return None  # a message too broken to read names nobody

    def _people(self, facts: list[MessageFacts], own: frozenset[str], private: frozenset[str]) -> _Chunk:
        chunk = _Chunk(people={})
        seen: set[str] = set()
        for message in facts:
            for person in message.people:
                if person.address in own or person.address in seen:
                    if person.signature is not None and person.address in chunk.people:
                        chunk.people[person.address] = _record(person)
                    continue
                seen.add(person.address)
                if _is_private(person.address, private):
                    chunk.private += 1
                elif not _business(person.address):
                    chunk.personal += 1
                else:
                    chunk.people[person.address] = _record(person)
        return chunk

    def _contribute(self, box: MailboxInfo, chunk: _Chunk, at: datetime, totals: Counter) -> None:
        totals["personal"] += chunk.personal
        totals["private"] += chunk.private
        totals["people"] += len(chunk.people)
        if not box.contribute or not chunk.people:
            return  # the member opted out: nothing of their mailbox is stored, not even privately
        summary = self.contributions.contribute(
            box.team_id, list(chunk.people.values()), SourceKind.MAILBOX, now=at,
            provenance=mailbox_source(box.id),
        )
        totals["candidates"] += summary.candidates
        totals["shared"] += summary.shared
        totals["corroborated"] += summary.corroborated
        totals["duplicates"] += summary.duplicates

    def _replies(self, facts: list[MessageFacts], private: frozenset[str], allowed: bool) -> int:
        if self.on_reply is None or not allowed:
            return 0
        count = 0
        for message in facts:
            reply = message.reply
            if reply.from_address is None or not (reply.in_reply_to or reply.references):
                continue
            if _is_private(reply.from_address, private):
                continue
            self.on_reply(reply.from_address, reply.in_reply_to, reply.references, reply.received_at)
            count += 1
        return count

    def _providers(self, from_headers: dict[str, str | None], at: datetime) -> int:
        facts: list[tuple[str, str, str]] = [(d, p, "headers") for d, p in from_headers.items() if p]
        if self.mx is not None:
            for domain in list(from_headers)[: self.mx_lookups]:
                provider = self.mx.provider(domain)
                if provider:
                    facts.append((domain, provider, "mx"))
        if facts:
            run_write(self.engine, lambda conn: _upsert_providers(conn, facts, at.date()))
        return len(facts)


def _record(person: SeenPerson) -> ContactRecord:
    sig = person.signature
    if sig is None:
        return ContactRecord(full_name=person.name, email=person.address)
    return ContactRecord(
        full_name=sig.full_name or person.name, email=person.address, title=sig.title, company=sig.company,
        domain=sig.website, linkedin_url=sig.linkedin_url, phone=sig.phones[0].e164 if sig.phones else None,
    )


def _business(address: str) -> bool:
    try:
        return normalize_email(address).business
    except InvalidInput:
        return False


def _is_private(address: str, private: frozenset[str]) -> bool:
    if not private:
        return False
    domain = address.rsplit("@", 1)[-1]
    return address in private or domain in private or (safe_domain(domain) or "") in private


def _cursor(engine: Engine, mailbox_id: int) -> tuple[int | None, int]:
    with engine.connect() as conn:
        row = conn.execute(select(_BOX.c.uid_validity, _BOX.c.last_uid).where(_BOX.c.id == mailbox_id)).one()
    return row.uid_validity, row.last_uid


def _advance(engine: Engine, mailbox_id: int, uid_validity: int, last_uid: int, read: int, at: datetime) -> None:
    """Move the cursor forward only: a slower run that overlapped a faster one never moves it back
    (re-reading is harmless, contributions are idempotent; skipping would not be)."""

    def op(conn) -> None:
        box = _BOX.c
        conn.execute(
            update(_BOX)
            .where(box.id == mailbox_id, or_(box.uid_validity.is_(None), box.uid_validity != uid_validity,
                                             box.last_uid < last_uid))
            .values(uid_validity=uid_validity, last_uid=last_uid)
        )
        conn.execute(
            update(_BOX).where(box.id == mailbox_id).values(messages_read=box.messages_read + read, last_synced_at=at)
        )

    run_write(engine, op)


def _upsert_providers(conn, facts: list[tuple[str, str, str]], today: date) -> None:
    rows = [dict(domain=d, provider=p, evidence=e, first_seen_on=today, last_seen_on=today) for d, p, e in set(facts)]
    dialect_insert = sqlite.insert if is_sqlite(conn.engine) else postgresql.insert
    stmt = dialect_insert(_PROVIDER).values(rows)
    latest = func.max if is_sqlite(conn.engine) else func.greatest
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["domain", "provider", "evidence"],
            set_={"last_seen_on": latest(stmt.excluded.last_seen_on, _PROVIDER.c.last_seen_on)},
        )
    )


__all__ = ["MailboxSync", "ReplyHook", "SyncResult"]
