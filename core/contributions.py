"""The contributor database: what teams upload grows the shared data, without ever naming the team.

Rules (DESIGN.md "Contributor network and privacy"):
- Only business fields can arrive: a ContactRecord has no field for deal values, notes or other
  columns, and a free-webmail, role or disposable address is dropped before anything is stored.
- A value enters the shared tables (person, company, email_address, phone) only when our SMTP
  verifier accepted it (`SourceKind.SMTP_VERIFICATION`, emails only) or when at least two
  independent contributors supplied it.
- A *new shared person* needs more than a name and an employer, even from two customers: names
  and employers are what anyone can type (a made-up "Jane Doe at Acme" uploaded by two teams one
  attacker controls would otherwise become shared data). It needs a verifying fact: an email our
  SMTP verifier accepted, or the same business email or LinkedIn URL supplied by two independent
  teams.
- Until then a value (or a person) is a ContactCandidate: team-private, serving only the team that
  supplied it (core/people/matching.py with `team_id`).
- Contributors are counted by fingerprint: HMAC-SHA256 under TRIBUTARY_CONTRIBUTOR_KEY of the team
  id. The same team uploading twice is one contributor. Shared tables hold only the fingerprint
  and a day, never a team or member id; without the key the fingerprint cannot be recomputed from
  a team id or name. Candidates promoted into the shared tables are deleted once nothing of them
  is still private, so the private table does not keep pointing at what a team contributed.
- A team with `contribute = False` only ever gets candidates; its records are not observed, not
  promoted, and its candidates never count as corroboration for another team.
- Records are deduped against the team's contacts (TeamContact) and its own candidates.
- Job changes: a corroborated new employer (two independent contributors, or an email at the new
  employer's domain that our SMTP verifier accepted) moves the person, records the stint in the
  employment history, marks the emails at the old company update_required and tells the owners of
  the team contacts of that person (core/job_changes), all in one transaction;
  `contacts_with_updates` lists the team's contacts holding such emails.

Residual risk, stated plainly: anyone holding both the database and the key can recompute every
team's fingerprint. Keep the key out of the database and rotate it only with a re-fingerprinting.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from itertools import islice

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import InvalidInput, NotFound, TributaryError, check
from core.job_changes.history import JobEvidence, record_move_in
from core.job_changes.notices import notify_in
from core.normalize import ContactQuery, NormalizedContact, company_key, normalize_contact, registrable_domain
from core.people.company_accounts import save_accounts_of
from core.people.contacts import NewPerson, add_person_in, company_id_in
from core.people.matching import MatchOutcome, MatchRule, match_in
from storage.db import is_sqlite, read_transaction, run_write
from storage.limits import MAX_NAME_CHARS, MAX_NAME_PART_CHARS
from storage.models import (
    CandidateSource,
    Company,
    ContactCandidate,
    ContributionObservation,
    DataRequest,
    EmailAddress,
    Person,
    Phone,
    Team,
    TeamContact,
)
from storage.models.contributor import SourceKind, ValueKind
from storage.models.enums import DataKind, EmailStatus, PhoneStatus
from storage.timeutil import as_utc, utcnow

_PERSON = Person.__table__
_COMPANY = Company.__table__
_EMAIL = EmailAddress.__table__
_PHONE = Phone.__table__
_TEAM = Team.__table__
_CONTACT = TeamContact.__table__
_REQUEST = DataRequest.__table__
_CAND = ContactCandidate.__table__
_OBS = ContributionObservation.__table__
_SOURCE = CandidateSource.__table__
# Candidate fields whose origin CandidateSource tracks (name keys, company key and phone details follow them).
SOURCE_FIELDS = ("full_name", "title", "company", "domain", "email", "linkedin_url", "phone_e164", "location")

# The fields a team upload may carry (all business fields); nothing else has anywhere to go.
ContactRecord = ContactQuery

DEV_CONTRIBUTOR_KEY = "tributary-dev-contributor-key--set-TRIBUTARY_CONTRIBUTOR_KEY-in-production"
CONTRIBUTE_BATCH = 200
MIN_INDEPENDENT_CONTRIBUTORS = 2
# Score given to an email two contributors agree on but nobody SMTP-checked: plausible, not verified.
CORROBORATED_EMAIL_SCORE = 50
VERIFIED_EMAIL_SCORE = 90
# Facts that identify a person well enough for two teams' agreement to make it shared.
_IDENTITY_KINDS = (ValueKind.EMAIL, ValueKind.LINKEDIN_URL)
_STRONG_RULES = frozenset({MatchRule.EMAIL, MatchRule.LINKEDIN_URL, MatchRule.NAME_AT_DOMAIN})
# Applied in this order, so a new email at the new employer is not marked update_required by the move.
_FACT_ORDER = (
    ValueKind.EMPLOYER,
    ValueKind.TITLE,
    ValueKind.LOCATION,
    ValueKind.LINKEDIN_URL,
    ValueKind.PHONE,
    ValueKind.EMAIL,
)
# Single-valued facts where an older sighting must not undo a newer one (a stale CRM export).
_CURRENT_ONLY = frozenset({ValueKind.EMPLOYER, ValueKind.TITLE, ValueKind.LOCATION})
PERSON_MOVED_REASON = "person_moved"


class SkipReason(StrEnum):
    INVALID = "invalid"  # a field could not be read (see the detail)
    NO_IDENTITY = "no_identity"  # no business email, LinkedIn URL, or name with a company


class Outcome(StrEnum):
    SHARED = "shared"  # created a new shared person
    CORROBORATED = "corroborated"  # confirmed or promoted values of a shared person
    CANDIDATE = "candidate"  # kept team-private (pending corroboration, or the team opted out)
    DUPLICATE = "duplicate"  # nothing new for this team: an existing contact or candidate


@dataclass(frozen=True)
class RecordSkip:
    row: int  # 1-based position in the records given
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class ContributionSummary:
    records: int
    shared: int
    corroborated: int
    candidates: int
    duplicates: int
    personal_emails_dropped: int
    skipped: tuple[RecordSkip, ...]

    @property
    def skipped_by_reason(self) -> dict[SkipReason, int]:
        return dict(Counter(s.reason for s in self.skipped))


@dataclass(frozen=True)
class ContactUpdate:
    """A team contact (accessed person, or a private candidate) whose email is update_required."""

    person_id: int | None
    candidate_id: int | None
    full_name: str | None
    old_email: str
    email_status: EmailStatus
    company: str | None  # where the person is now, per the shared data
    domain: str | None
    title: str | None


@dataclass
class _Tally:
    counts: Counter = field(default_factory=Counter)
    skipped: list[RecordSkip] = field(default_factory=list)
    personal: int = 0


@dataclass(frozen=True)
class _Context:
    team_id: int
    contribute: bool
    fingerprint: str
    source_kind: SourceKind
    now: datetime
    provenance: str | None = None  # e.g. "mailbox:7": which candidate fields came from where

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def verified(self) -> bool:
        return self.source_kind is SourceKind.SMTP_VERIFICATION


def contributor_fingerprint(key: str | bytes, team_id: int) -> str:
    """HMAC-SHA256 of the team id under the contributor key, hex. Stable per team, so one team is one
    contributor however often it uploads; unrecoverable without the key."""
    secret = key.encode() if isinstance(key, str) else key
    return hmac.new(secret, f"tributary/contributor/v1/team/{team_id}".encode(), hashlib.sha256).hexdigest()


class Contributions:
    def __init__(self, engine: Engine, contributor_key: str | bytes) -> None:
        if not contributor_key:
            raise InvalidInput("contributor key must not be empty (set TRIBUTARY_CONTRIBUTOR_KEY)")
        self.engine = engine
        self._key = contributor_key

    def fingerprint(self, team_id: int) -> str:
        return contributor_fingerprint(self._key, team_id)

    def contribute(
        self,
        team_id: int,
        records: Iterable[ContactRecord],
        source_kind: SourceKind,
        *,
        now: datetime | None = None,
        batch_size: int = CONTRIBUTE_BATCH,
        provenance: str | None = None,
    ) -> ContributionSummary:
        """Contribute a team's records. Streams: `records` is read in batches of `batch_size`, each
        batch one transaction. A bad record is skipped with its row and reason; the rest go on.
        `provenance` names a revocable inflow (a connected mailbox): the team-private candidates it
        touches record which of their fields it supplied, so revoking it can remove exactly those."""
        source = SourceKind(source_kind)
        at = as_utc(now) if now is not None else utcnow()
        tally = _Tally()
        total = 0
        rows = enumerate(records, start=1)
        while batch := list(islice(rows, batch_size)):
            total += len(batch)
            normalized = []
            for row, record in batch:
                try:
                    normalized.append((row, normalize_contact(record)))
                except TributaryError as exc:
                    tally.skipped.append(RecordSkip(row, SkipReason.INVALID, f"row {row}: {exc}"))
            if normalized:
                outcomes = run_write(
                    self.engine, lambda conn, n=normalized: self._batch(conn, team_id, source, at, n, provenance)
                )
                for outcome in outcomes:
                    if isinstance(outcome, RecordSkip):
                        tally.skipped.append(outcome)
                    else:
                        tally.counts[outcome[0]] += 1
                        tally.personal += outcome[1]
        return ContributionSummary(
            records=total,
            shared=tally.counts[Outcome.SHARED],
            corroborated=tally.counts[Outcome.CORROBORATED],
            candidates=tally.counts[Outcome.CANDIDATE],
            duplicates=tally.counts[Outcome.DUPLICATE],
            personal_emails_dropped=tally.personal,
            skipped=tuple(sorted(tally.skipped, key=lambda s: s.row)),
        )

    # --- one batch, one transaction -------------------------------------------------------------

    def _batch(
        self,
        conn: Connection,
        team_id: int,
        source: SourceKind,
        now: datetime,
        records: list[tuple[int, NormalizedContact]],
        provenance: str | None = None,
    ) -> list[tuple[Outcome, int] | RecordSkip]:
        # Read in the transaction, so an opt-out that lands mid-upload applies to the next batch.
        contribute = conn.execute(select(_TEAM.c.contribute).where(_TEAM.c.id == team_id)).scalar()
        if contribute is None:
            raise NotFound(f"no team with id {team_id}")
        ctx = _Context(team_id, bool(contribute), self.fingerprint(team_id), source, now, provenance)
        out: list[tuple[Outcome, int] | RecordSkip] = []
        for row, contact in records:
            personal = 1 if contact.email is not None and not contact.email.business else 0
            if not _has_identity(contact):
                detail = f"row {row}: needs a business email, a LinkedIn URL, or a first and last name with a company"
                out.append(RecordSkip(row, SkipReason.NO_IDENTITY, detail))
                continue
            _lock_identity(conn, contact)
            out.append((self._one(conn, ctx, contact), personal))
        return out

    def _one(self, conn: Connection, ctx: _Context, contact: NormalizedContact) -> Outcome:
        facts = _facts(contact)
        match = match_in(conn, contact, rules=_STRONG_RULES)
        if match.outcome is MatchOutcome.MATCHED and match.best is not None and match.best.person_id is not None:
            return self._known_person(conn, ctx, match.best.person_id, contact, facts)
        if match.outcome is MatchOutcome.AMBIGUOUS or not ctx.contribute:
            return _keep_private(conn, ctx, None, contact)
        return self._new_person(conn, ctx, contact, facts)

    def _known_person(
        self, conn: Connection, ctx: _Context, person_id: int, contact: NormalizedContact, facts: dict
    ) -> Outcome:
        shared = _shared_facts(conn, person_id)
        new = {k: v for k, v in facts.items() if v not in shared.get(k, ())}
        same = {k: v for k, v in facts.items() if k not in new}
        is_contact = (
            conn.execute(
                select(_CONTACT.c.id).where(_CONTACT.c.team_id == ctx.team_id, _CONTACT.c.person_id == person_id)
            ).first()
            is not None
        )
        if not ctx.contribute:
            if not new:
                return Outcome.DUPLICATE
            return _keep_private(conn, ctx, person_id, contact)
        for kind, value in same.items():
            _observe(conn, person_id, kind, value, {ctx.fingerprint: ctx.source_kind}, ctx.today)
        if ctx.verified and ValueKind.EMAIL in same:
            _mark_verified(conn, same[ValueKind.EMAIL], ctx.now)
        since = _as_date(conn.execute(select(_PERSON.c.updated_at).where(_PERSON.c.id == person_id)).scalar_one())
        promoted = False
        pending = False
        for kind in _FACT_ORDER:
            if kind not in new:
                continue
            value = new[kind]
            others = self._other_contributors(conn, ctx, person_id, kind, value, since)
            if (
                (kind is ValueKind.EMAIL and ctx.verified)
                or len(others) + 1 >= MIN_INDEPENDENT_CONTRIBUTORS
                or (kind is ValueKind.EMPLOYER and _verified_email_at_employer(conn, person_id, contact, ctx))
            ):
                if _apply(conn, person_id, kind, value, contact, ctx):
                    _observe(conn, person_id, kind, value, {ctx.fingerprint: ctx.source_kind, **others}, ctx.today)
                    promoted = True
                    continue
            pending = True
        if pending:
            _keep_private(conn, ctx, person_id, contact)
        _absorb(conn, person_id)
        if promoted:
            return Outcome.CORROBORATED
        if pending:
            return Outcome.CANDIDATE
        return Outcome.DUPLICATE if is_contact or _own_candidate(conn, ctx.team_id, person_id) else Outcome.CORROBORATED

    def _new_person(self, conn: Connection, ctx: _Context, contact: NormalizedContact, facts: dict) -> Outcome:
        others = self._other_candidates_for(conn, ctx, contact)
        independent = {contributor_fingerprint(self._key, row.team_id) for row in others} | {ctx.fingerprint}
        # Name + employer agreeing is not enough (module doc): the identity itself must be corroborated.
        identity = {
            contributor_fingerprint(self._key, row.team_id)
            for row in others
            for kind in _IDENTITY_KINDS
            if kind in facts and _candidate_value(row, kind) == facts[kind]
        }
        corroborated = len(independent & (identity | {ctx.fingerprint})) >= MIN_INDEPENDENT_CONTRIBUTORS
        verified_email = ctx.verified and ValueKind.EMAIL in facts
        if not contact.full_name or ValueKind.EMPLOYER not in facts or not (corroborated or verified_email):
            return _keep_private(conn, ctx, None, contact)
        company = contact.company or contact.domain or ""
        person_id = add_person_in(
            conn,
            NewPerson(
                full_name=contact.full_name,
                first_name=contact.first_name,
                last_name=contact.last_name,
                company=company,
                domain=contact.domain,
            ),
        )
        by_fp = {contributor_fingerprint(self._key, row.team_id): row for row in others}
        employer_agree = {fp: row.source_kind for fp, row in by_fp.items() if _candidate_value(row, ValueKind.EMPLOYER)}
        _observe(
            conn,
            person_id,
            ValueKind.EMPLOYER,
            facts[ValueKind.EMPLOYER],
            {ctx.fingerprint: ctx.source_kind, **employer_agree},
            ctx.today,
        )
        pending = False
        for kind in _FACT_ORDER:
            if kind not in facts or kind is ValueKind.EMPLOYER:
                continue
            value = facts[kind]
            agree = {fp: row.source_kind for fp, row in by_fp.items() if _candidate_value(row, kind) == value}
            if (kind is ValueKind.EMAIL and ctx.verified) or agree:
                if _apply(conn, person_id, kind, value, contact, ctx):
                    _observe(conn, person_id, kind, value, {ctx.fingerprint: ctx.source_kind, **agree}, ctx.today)
                    continue
            pending = True
        if others:
            conn.execute(update(_CAND).where(_CAND.c.id.in_([row.id for row in others])).values(person_id=person_id))
        if pending:
            _keep_private(conn, ctx, person_id, contact)
        # This team's own unlinked candidate for the same person is now about the shared person.
        _link_own_candidates(conn, ctx.team_id, contact, person_id)
        _absorb(conn, person_id)
        return Outcome.SHARED

    # --- corroboration ------------------------------------------------------------------------------

    def _other_contributors(
        self, conn: Connection, ctx: _Context, person_id: int, kind: ValueKind, value: str, since: date
    ) -> dict[str, str]:
        """Fingerprints (-> source kind) of other contributors who supplied this value for this person:
        earlier shared observations, and other contributing teams' candidates linked to the person."""
        found: dict[str, str] = {}
        obs = select(_OBS.c.contributor, _OBS.c.source_kind).where(
            _OBS.c.person_id == person_id,
            _OBS.c.value_kind == kind.value,
            _OBS.c.value == value,
            _OBS.c.contributor != ctx.fingerprint,
        )
        if kind in _CURRENT_ONLY:
            obs = obs.where(_OBS.c.last_seen_on >= since)
        for row in conn.execute(obs):
            found.setdefault(row.contributor, row.source_kind)
        cands = conn.execute(
            select(_CAND)
            .join(_TEAM, _TEAM.c.id == _CAND.c.team_id)
            .where(_CAND.c.person_id == person_id, _CAND.c.team_id != ctx.team_id, _TEAM.c.contribute.is_(True))
        ).all()
        for row in cands:
            if _candidate_value(row, kind) == value:
                found.setdefault(contributor_fingerprint(self._key, row.team_id), row.source_kind)
        return found

    def _other_candidates_for(self, conn: Connection, ctx: _Context, contact: NormalizedContact) -> list:
        """Other contributing teams' unlinked candidates with the same identity (exact keys only)."""
        conditions = []
        if contact.business_email:
            conditions.append(_CAND.c.email == contact.business_email)
        if contact.linkedin_url:
            conditions.append(_CAND.c.linkedin_url == contact.linkedin_url)
        if contact.has_name and contact.domain:
            conditions.append(
                and_(
                    _CAND.c.domain == contact.domain,
                    _CAND.c.last_key == contact.last_key,
                    _CAND.c.first_key == contact.first_key,
                )
            )
        if not conditions:
            return []
        return conn.execute(
            select(_CAND)
            .join(_TEAM, _TEAM.c.id == _CAND.c.team_id)
            .where(
                or_(*conditions),
                _CAND.c.person_id.is_(None),
                _CAND.c.team_id != ctx.team_id,
                _TEAM.c.contribute.is_(True),
            )
            .order_by(_CAND.c.id)
        ).all()


# --- facts ------------------------------------------------------------------------------------------


def _has_identity(contact: NormalizedContact) -> bool:
    return bool(
        contact.business_email or contact.linkedin_url or (contact.has_name and (contact.domain or contact.company_key))
    )


def _employer_value(domain: str | None, company_key: str) -> str | None:
    if domain:
        return domain
    return f"name:{company_key}" if company_key else None


def _facts(contact: NormalizedContact) -> dict[ValueKind, str]:
    facts: dict[ValueKind, str | None] = {
        ValueKind.EMPLOYER: _employer_value(contact.domain, contact.company_key),
        ValueKind.TITLE: contact.title,
        ValueKind.LOCATION: contact.location,
        ValueKind.LINKEDIN_URL: contact.linkedin_url,
        ValueKind.PHONE: contact.phone.e164 if contact.phone else None,
        ValueKind.EMAIL: contact.business_email,
    }
    return {k: v for k, v in facts.items() if v}


def _candidate_value(row, kind: ValueKind) -> str | None:
    if kind is ValueKind.EMPLOYER:
        return _employer_value(row.domain, row.company_key)
    column = {
        ValueKind.TITLE: "title",
        ValueKind.LOCATION: "location",
        ValueKind.LINKEDIN_URL: "linkedin_url",
        ValueKind.PHONE: "phone_e164",
        ValueKind.EMAIL: "email",
    }[kind]
    return getattr(row, column)


def _shared_facts(conn: Connection, person_id: int) -> dict[ValueKind, set[str]]:
    row = conn.execute(
        select(_PERSON.c.title, _PERSON.c.location, _PERSON.c.linkedin_url, _COMPANY.c.domain, _COMPANY.c.name)
        .outerjoin(_COMPANY, _COMPANY.c.id == _PERSON.c.company_id)
        .where(_PERSON.c.id == person_id)
    ).one()
    facts: dict[ValueKind, set[str]] = {
        ValueKind.TITLE: {row.title} if row.title else set(),
        ValueKind.LOCATION: {row.location} if row.location else set(),
        ValueKind.LINKEDIN_URL: {row.linkedin_url} if row.linkedin_url else set(),
        ValueKind.EMPLOYER: set(),
        ValueKind.EMAIL: set(conn.execute(select(_EMAIL.c.address).where(_EMAIL.c.person_id == person_id)).scalars()),
        ValueKind.PHONE: set(conn.execute(select(_PHONE.c.e164).where(_PHONE.c.person_id == person_id)).scalars()),
    }
    employer = _employer_value(row.domain, company_key(row.name) if row.name else "")
    if employer:
        facts[ValueKind.EMPLOYER].add(employer)
    return facts


def _as_date(value: datetime) -> date:
    return as_utc(value).date()


# --- writes -------------------------------------------------------------------------------------------


def _apply(
    conn: Connection, person_id: int, kind: ValueKind, value: str, contact: NormalizedContact, ctx: _Context
) -> bool:
    """Write one corroborated value into the shared tables. False when it cannot be (the email or
    LinkedIn URL already belongs to someone else): then it stays private."""
    if kind is ValueKind.EMAIL:
        if conn.execute(select(_EMAIL.c.id).where(_EMAIL.c.address == value)).first() is not None:
            return False
        conn.execute(
            insert(_EMAIL).values(
                person_id=person_id,
                address=value,
                status=(EmailStatus.VERIFIED if ctx.verified else EmailStatus.UNVERIFIED).value,
                score=VERIFIED_EMAIL_SCORE if ctx.verified else CORROBORATED_EMAIL_SCORE,
                reasons=[],
                checked_at=ctx.now if ctx.verified else None,
                created_at=ctx.now,
            )
        )
        return True
    if kind is ValueKind.PHONE:
        check(contact.phone is not None, "a phone contribution carries a phone")
        conn.execute(
            insert(_PHONE).values(
                person_id=person_id,
                e164=value,
                kind=contact.phone.kind.value,
                line_type=contact.phone.line_type,
                status=PhoneStatus.VALID.value,
                checked_at=ctx.now,
                created_at=ctx.now,
            )
        )
        return True
    if kind is ValueKind.LINKEDIN_URL:
        taken = conn.execute(select(_PERSON.c.id).where(_PERSON.c.linkedin_url == value)).scalar()
        if taken is not None and taken != person_id:
            return False
        conn.execute(update(_PERSON).where(_PERSON.c.id == person_id).values(linkedin_url=value, updated_at=ctx.now))
        return True
    if kind is ValueKind.TITLE:
        conn.execute(update(_PERSON).where(_PERSON.c.id == person_id).values(title=value, updated_at=ctx.now))
        return True
    if kind is ValueKind.LOCATION:
        conn.execute(update(_PERSON).where(_PERSON.c.id == person_id).values(location=value, updated_at=ctx.now))
        return True
    _move(conn, person_id, contact, ctx)
    return True


def _verified_email_at_employer(conn: Connection, person_id: int, contact: NormalizedContact, ctx: _Context) -> bool:
    """Our verifier accepted this record's email, it is at the new employer's domain, and it is not
    someone else's: that alone corroborates the new employer."""
    email = contact.business_email
    if not (ctx.verified and email and contact.domain and _email_domain(email) == contact.domain):
        return False
    owner = conn.execute(select(_EMAIL.c.person_id).where(_EMAIL.c.address == email)).first()
    return owner is None or owner.person_id == person_id


def _move(conn: Connection, person_id: int, contact: NormalizedContact, ctx: _Context) -> None:
    """A job change: the person now works elsewhere; their emails at the old company are stale."""
    now = ctx.now
    old = conn.execute(
        select(_COMPANY.c.id, _COMPANY.c.domain)
        .join(_PERSON, _PERSON.c.company_id == _COMPANY.c.id)
        .where(_PERSON.c.id == person_id)
    ).one_or_none()
    new_company = company_id_in(conn, contact.company or contact.domain or "", contact.domain)
    conn.execute(update(_PERSON).where(_PERSON.c.id == person_id).values(company_id=new_company, updated_at=now))
    evidence = JobEvidence.VERIFIED_EMAIL if ctx.verified else JobEvidence.TWO_SOURCES
    stint = record_move_in(conn, person_id, old.id if old else None, new_company, evidence, now)
    save_accounts_of(conn, [person_id], now)  # every team with this contact now has the new company's account
    if old is None:
        return
    stale = []
    for row in conn.execute(
        select(_EMAIL.c.id, _EMAIL.c.address, _EMAIL.c.reasons).where(
            _EMAIL.c.person_id == person_id,
            _EMAIL.c.status.notin_([EmailStatus.INVALID.value, EmailStatus.UPDATE_REQUIRED.value]),
        )
    ):
        domain = _email_domain(row.address)
        at_old = domain == old.domain if old.domain else domain != contact.domain
        if at_old:
            stale.append(row)
    for row in stale:
        conn.execute(
            update(_EMAIL)
            .where(_EMAIL.c.id == row.id)
            .values(status=EmailStatus.UPDATE_REQUIRED.value, reasons=[*list(row.reasons or []), PERSON_MOVED_REASON])
        )
    if stint is not None:
        notify_in(conn, stint, now)  # after the emails, so a notice names the one that needs an update


def _email_domain(address: str) -> str | None:
    try:
        return registrable_domain(address.rsplit("@", 1)[1])
    except (InvalidInput, IndexError):
        return None


def _mark_verified(conn: Connection, address: str, now: datetime) -> None:
    """Our verifier accepted an address the shared data had only as unverified/unknown."""
    conn.execute(
        update(_EMAIL)
        .where(
            _EMAIL.c.address == address,
            _EMAIL.c.status.in_([EmailStatus.UNVERIFIED.value, EmailStatus.UNKNOWN.value]),
        )
        .values(status=EmailStatus.VERIFIED.value, score=VERIFIED_EMAIL_SCORE, checked_at=now)
    )


def _observe(
    conn: Connection, person_id: int, kind: ValueKind, value: str, contributors: dict[str, str], today: date
) -> None:
    """Record each contributor's sighting once; a repeat only moves last_seen_on."""
    if not contributors:
        return
    rows = [
        dict(
            person_id=person_id,
            value_kind=kind.value,
            value=value,
            source_kind=str(source),
            contributor=fp,
            first_seen_on=today,
            last_seen_on=today,
        )
        for fp, source in contributors.items()
    ]
    dialect_insert = sqlite.insert if is_sqlite(conn.engine) else postgresql.insert
    stmt = dialect_insert(_OBS).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["person_id", "value_kind", "value", "contributor", "source_kind"],
        set_={"last_seen_on": func.max(stmt.excluded.last_seen_on, _OBS.c.last_seen_on)}
        if is_sqlite(conn.engine)
        else {"last_seen_on": func.greatest(stmt.excluded.last_seen_on, _OBS.c.last_seen_on)},
    )
    conn.execute(stmt)


def _own_candidate(conn: Connection, team_id: int, person_id: int) -> bool:
    return (
        conn.execute(select(_CAND.c.id).where(_CAND.c.team_id == team_id, _CAND.c.person_id == person_id)).first()
        is not None
    )


def _candidate_values(contact: NormalizedContact) -> dict:
    """What a candidate row stores: business fields only; a personal email is never kept."""
    return dict(
        first_name=contact.first_name,
        last_name=contact.last_name,
        full_name=contact.full_name,
        first_key=contact.first_key[:MAX_NAME_PART_CHARS],
        last_key=contact.last_key[:MAX_NAME_PART_CHARS],
        full_key=contact.full_key[:MAX_NAME_CHARS],
        title=contact.title,
        company=contact.company,
        company_key=contact.company_key[:MAX_NAME_CHARS],
        domain=contact.domain,
        email=contact.business_email,
        linkedin_url=contact.linkedin_url,
        phone_e164=contact.phone.e164 if contact.phone else None,
        phone_kind=contact.phone.kind.value if contact.phone else None,
        phone_line_type=contact.phone.line_type if contact.phone else None,
        location=contact.location,
    )


def _find_own_candidate(conn: Connection, team_id: int, person_id: int | None, contact: NormalizedContact):
    conditions = []
    if person_id is not None:
        conditions.append(_CAND.c.person_id == person_id)
    if contact.business_email:
        conditions.append(_CAND.c.email == contact.business_email)
    if contact.linkedin_url:
        conditions.append(_CAND.c.linkedin_url == contact.linkedin_url)
    if contact.has_name and contact.domain:
        conditions.append(
            and_(
                _CAND.c.domain == contact.domain,
                _CAND.c.last_key == contact.last_key,
                _CAND.c.first_key == contact.first_key,
            )
        )
    if contact.has_name and contact.company_key:
        conditions.append(
            and_(
                _CAND.c.company_key == contact.company_key,
                _CAND.c.last_key == contact.last_key,
                _CAND.c.first_key == contact.first_key,
            )
        )
    if not conditions:
        return None
    return conn.execute(
        select(_CAND).where(_CAND.c.team_id == team_id, or_(*conditions)).order_by(_CAND.c.id).limit(1)
    ).one_or_none()


def _keep_private(conn: Connection, ctx: _Context, person_id: int | None, contact: NormalizedContact) -> Outcome:
    """Insert or update the team's candidate; DUPLICATE when it already says all of this."""
    values = _candidate_values(contact)
    existing = _find_own_candidate(conn, ctx.team_id, person_id, contact)
    if existing is None:
        created = conn.execute(
            insert(_CAND).values(
                team_id=ctx.team_id,
                person_id=person_id,
                source_kind=ctx.source_kind.value,
                created_at=ctx.now,
                updated_at=ctx.now,
                **values,
            )
        )
        _record_source(conn, ctx, created.inserted_primary_key[0], values, None)
        return Outcome.CANDIDATE
    _record_source(conn, ctx, existing.id, values, existing)
    changes = {k: v for k, v in values.items() if v and getattr(existing, k) != v}
    if person_id is not None and existing.person_id != person_id:
        changes["person_id"] = person_id
    if not changes:
        return Outcome.DUPLICATE
    conn.execute(update(_CAND).where(_CAND.c.id == existing.id).values(updated_at=ctx.now, **changes))
    return Outcome.CANDIDATE


def _link_own_candidates(conn: Connection, team_id: int, contact: NormalizedContact, person_id: int) -> None:
    own = _find_own_candidate(conn, team_id, None, contact)
    if own is not None and own.person_id is None:
        conn.execute(update(_CAND).where(_CAND.c.id == own.id).values(person_id=person_id))


def _absorb(conn: Connection, person_id: int) -> None:
    """Delete candidates of this person that hold nothing the shared data does not: nothing of them
    is private any more, and keeping them would only record who contributed what."""
    shared = _shared_facts(conn, person_id)
    done = [
        row.id
        for row in conn.execute(select(_CAND).where(_CAND.c.person_id == person_id))
        if all((value := _candidate_value(row, kind)) is None or value in shared.get(kind, ()) for kind in _FACT_ORDER)
    ]
    if done:
        conn.execute(delete(_SOURCE).where(_SOURCE.c.candidate_id.in_(done)))
        conn.execute(delete(_CAND).where(_CAND.c.id.in_(done)))


def field_digest(field_name: str, value: object) -> str:
    """Stands for a candidate field's value in CandidateSource without being the value."""
    return hashlib.sha256(f"{field_name}\x00{value}".encode()).hexdigest()[:16]


def _record_source(conn: Connection, ctx: _Context, candidate_id: int, values: dict, existing) -> None:
    """Note which fields of a candidate this inflow supplied. Only for candidates a revocable inflow
    touched: the first touch notes what the candidate held before as "prior", later plain uploads
    note their own fields, so revoking the inflow knows what else vouches for each value."""
    rows = {r.source: r.fields for r in conn.execute(select(_SOURCE).where(_SOURCE.c.candidate_id == candidate_id))}
    if ctx.provenance is None and not rows:
        return
    if ctx.provenance is not None and not rows and existing is not None:
        prior = {k: field_digest(k, getattr(existing, k)) for k in SOURCE_FIELDS if getattr(existing, k)}
        conn.execute(insert(_SOURCE).values(candidate_id=candidate_id, source="prior", fields=prior))
    source = ctx.provenance or ctx.source_kind.value
    supplied = {k: field_digest(k, values[k]) for k in SOURCE_FIELDS if values.get(k)}
    if source in rows:
        merged = {**rows[source], **supplied}
        if merged != rows[source]:
            conn.execute(
                update(_SOURCE)
                .where(_SOURCE.c.candidate_id == candidate_id, _SOURCE.c.source == source)
                .values(fields=merged)
            )
    else:
        conn.execute(insert(_SOURCE).values(candidate_id=candidate_id, source=source, fields=supplied))


def _lock_identity(conn: Connection, contact: NormalizedContact) -> None:
    """Serialise concurrent contributions of the same person (two teams promoting one person at once
    would otherwise create it twice). SQLite writers are already serial (BEGIN IMMEDIATE)."""
    if is_sqlite(conn.engine):
        return
    keys = sorted(
        k
        for k in (
            contact.business_email and f"e:{contact.business_email}",
            contact.linkedin_url and f"l:{contact.linkedin_url}",
            contact.has_name
            and (contact.domain or contact.company_key)
            and f"n:{contact.domain or contact.company_key}:{contact.first_key}:{contact.last_key}",
        )
        if k
    )
    for key in keys:
        lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})


# --- job-change notices ----------------------------------------------------------------------------


def contacts_with_updates(engine: Engine, team_id: int) -> list[ContactUpdate]:
    """The team's contacts whose email the shared data now marks update_required (the person moved,
    or the address went bad): emails the team accessed, and emails in its private candidates."""
    with read_transaction(engine) as conn:
        return list(_contact_updates(conn, team_id))


def _contact_updates(conn: Connection, team_id: int) -> Iterator[ContactUpdate]:
    stale = _EMAIL.c.status == EmailStatus.UPDATE_REQUIRED.value
    accessed = conn.execute(
        select(
            _PERSON.c.id,
            _PERSON.c.full_name,
            _PERSON.c.title,
            _COMPANY.c.name.label("company"),
            _COMPANY.c.domain,
            _EMAIL.c.address,
        )
        .select_from(_REQUEST)
        .join(_CONTACT, and_(_CONTACT.c.team_id == _REQUEST.c.team_id, _CONTACT.c.person_id == _REQUEST.c.person_id))
        .join(_EMAIL, _EMAIL.c.address == _REQUEST.c.email_address)
        .join(_PERSON, _PERSON.c.id == _EMAIL.c.person_id)
        .outerjoin(_COMPANY, _COMPANY.c.id == _PERSON.c.company_id)
        .where(_REQUEST.c.team_id == team_id, _REQUEST.c.kind == DataKind.EMAIL.value, stale)
        .order_by(_PERSON.c.id)
    ).all()
    seen: set[tuple[int, str]] = set()
    for row in accessed:
        seen.add((row.id, row.address))
        yield ContactUpdate(
            row.id, None, row.full_name, row.address, EmailStatus.UPDATE_REQUIRED, row.company, row.domain, row.title
        )
    private = conn.execute(
        select(
            _CAND.c.id.label("candidate_id"),
            _PERSON.c.id,
            _CAND.c.full_name,
            _PERSON.c.title,
            _COMPANY.c.name.label("company"),
            _COMPANY.c.domain,
            _EMAIL.c.address,
        )
        .select_from(_CAND)
        .join(_EMAIL, _EMAIL.c.address == _CAND.c.email)
        .join(_PERSON, _PERSON.c.id == _EMAIL.c.person_id)
        .outerjoin(_COMPANY, _COMPANY.c.id == _PERSON.c.company_id)
        .where(_CAND.c.team_id == team_id, stale)
        .order_by(_CAND.c.id)
    ).all()
    for row in private:
        if (row.id, row.address) in seen:
            continue
        yield ContactUpdate(
            row.id,
            row.candidate_id,
            row.full_name,
            row.address,
            EmailStatus.UPDATE_REQUIRED,
            row.company,
            row.domain,
            row.title,
        )
