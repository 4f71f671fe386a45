"""Waterfall enrichment: per team, an ordered list of sources for email and another for phone, tried
one after another until one gives an actionable result.

- Actionable: an email our verifier vouches for (verified / likely_to_engage); for a mobile request a
  valid mobile number, for an email request (which looks for a free office phone) a valid office one.
- Not actionable but found (accept_all, a vendor's unchecked email, an unknown-status number) is kept,
  and the best such finding is returned when no source gives anything better: it costs the team
  nothing, by the data-request rules.
- Validation step (optional, per team): an email nobody we trust has checked (status unverified or
  unknown, i.e. a vendor's claim) is verified with our verifier before it is accepted. Verified
  makes it actionable; invalid rejects it and the waterfall moves on; anything else keeps it as a
  free, non-actionable finding.
- A source that fails (network, vendor error, circuit open, a bug) is skipped, never fatal.
- Every source call (and every validation) is logged in `source_call`: source, position, latency,
  outcome, the status found, and our cost (the source's price per hit, when it hit).
- Findings from outside the contributor database are written back (core.people.contacts).
- One person's email and mobile requests (one lookup, core.sources.lookup_scope) walk the phone
  sources once: the later request goes on from where the earlier one stopped, so each phone source
  is asked, logged and written back once per lookup, not once per request (a source that failed is
  asked again).
- Within `deferring()` (DataRequests uses it), the call log and write-back are kept and run inside
  the data request's settle transaction instead of transactions of their own.

`Waterfall` speaks the ContactSource protocol, so DataRequests uses it like any other source.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.accounts import Accounts, TeamInfo
from core.errors import InvalidInput
from core.people.contacts import PHONE_KEY, has_storable, phone_rows, record_found_in
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from core.sources.base import ContactSource, SourceError
from core.sources.lookup_scope import shared_in_lookup
from core.verify.result import EmailResult
from storage.db import is_sqlite, read_transaction, run_write
from storage.deferred_writes import DeferredWrites, WriteOp
from storage.models import Phone, SourceCall, WaterfallConfig
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, DataKind, EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

_WC = WaterfallConfig.__table__
_SC = SourceCall.__table__
_PHONE = Phone.__table__

DEFAULT_EMAIL_SOURCES = ("database",)
DEFAULT_PHONE_SOURCES = ("database",)
MAX_SOURCES = 10
# Vendor claims that the validation step checks; our own statuses are left as they are.
NEEDS_VALIDATION = frozenset({EmailStatus.UNVERIFIED, EmailStatus.UNKNOWN})
# Which non-actionable email to keep when nothing actionable turns up (lower is better).
_FALLBACK_RANK = {
    EmailStatus.ACCEPT_ALL: 0,
    EmailStatus.UNVERIFIED: 1,
    EmailStatus.UNKNOWN: 2,
    EmailStatus.UPDATE_REQUIRED: 3,
}
_DETAIL_MAX = 500
_USD_MICROS = Decimal(1_000_000)

# Verifies one address with our own verifier (stored history first).
Validate = Callable[[str], EmailResult]


@dataclass(frozen=True)
class WaterfallPlan:
    team_id: int
    email_sources: tuple[str, ...]
    phone_sources: tuple[str, ...]
    validate_email: bool
    configured: bool  # False: the team has not set one and gets the default
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SourceCallRecord:
    team_id: int
    person_id: int
    kind: str  # email | phone | validation
    source: str
    position: int
    outcome: str
    result_status: str | None
    latency_ms: int
    cost_usd_micros: int
    detail: str | None
    created_at: datetime


@dataclass
class _CallLog:
    team_id: int
    person_id: int
    records: list[SourceCallRecord] = field(default_factory=list)

    def add(
        self,
        kind: str,
        source: str,
        position: int,
        outcome: str,
        started: float,
        *,
        status: str | None = None,
        cost_usd: Decimal = Decimal(0),
        detail: str | None = None,
    ) -> None:
        self.records.append(
            SourceCallRecord(
                team_id=self.team_id,
                person_id=self.person_id,
                kind=kind,
                source=source,
                position=position,
                outcome=outcome,
                result_status=status,
                latency_ms=max(0, round((time.perf_counter() - started) * 1000)),
                cost_usd_micros=int(cost_usd * _USD_MICROS),
                detail=detail[:_DETAIL_MAX] if detail else None,
                created_at=utcnow(),
            )
        )


class Waterfall:
    """One team's waterfall for one kind of request (see the module docstring)."""

    name = "waterfall"
    cost_per_hit_usd = Decimal(0)  # the team pays credits; our costs are logged per source call
    rate_limit_per_s: float | None = None

    def __init__(
        self,
        engine: Engine,
        plan: WaterfallPlan,
        sources: Mapping[str, ContactSource],
        *,
        wanted: DataKind = DataKind.EMAIL,
        validate: Validate | None = None,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.sources = sources
        self.wanted = wanted
        self.validate = validate
        used = {*plan.email_sources, *plan.phone_sources}
        self.timeout_s = sum(sources[name].timeout_s for name in used if name in sources)
        self._local = threading.local()

    @contextmanager
    def deferring(self) -> Iterator[DeferredWrites]:
        """This thread's call log and write-back inside the block are kept, not written: the caller
        runs them in its own transaction (core.data_requests.SettleWrites)."""
        pending = DeferredWrites()
        previous = getattr(self._local, "pending", None)
        self._local.pending = pending
        try:
            yield pending
        finally:
            self._local.pending = previous

    def _write(self, op: WriteOp) -> None:
        pending: DeferredWrites | None = getattr(self._local, "pending", None)
        if pending is None:
            run_write(self.engine, op)
        else:
            pending.add(op)

    def _save(self, records: Sequence[SourceCallRecord]) -> None:
        if not records:
            return
        pending: DeferredWrites | None = getattr(self._local, "pending", None)
        if pending is None:
            rows = list(records)
            run_write(self.engine, lambda conn: save_calls_in(conn, rows))
        else:
            pending.add_rows(_SC, _call_rows(records))  # merged with the batch's other calls

    def _record_found(self, person_id: int, email: EmailFinding | None, phones: Sequence[PhoneFinding] = ()) -> None:
        if not has_storable(email, phones):
            return
        pending: DeferredWrites | None = getattr(self._local, "pending", None)
        if pending is None or not phones:
            self._write(lambda conn: record_found_in(conn, person_id, email, phones))
            return
        # A batch's phones go in as one statement with the batch's other rows (most lookups find one).
        pending.add_rows(_PHONE, phone_rows(person_id, phones, utcnow()), skip_conflicts_on=PHONE_KEY)
        if email is not None:
            self._write(lambda conn: record_found_in(conn, person_id, email))

    # ---- email

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        calls = _CallLog(self.plan.team_id, person.id)
        try:
            found = self._find_email(person, calls)
        finally:
            self._save(calls.records)
        if found is not None and found.source != "database":
            self._record_found(person.id, found)
        return found

    def _find_email(self, person: PersonInfo, calls: _CallLog) -> EmailFinding | None:
        fallback: EmailFinding | None = None
        for position, name in enumerate(self.plan.email_sources):
            source = self.sources.get(name)
            if source is None:
                calls.add("email", name, position, "unknown_source", time.perf_counter())
                continue
            started = time.perf_counter()
            try:
                finding = source.find_email(person)
            except Exception as exc:  # a failing source is skipped, never fatal
                self._failed(calls, "email", name, position, started, exc)
                continue
            if finding is None:
                calls.add("email", name, position, "not_found", started)
                continue
            calls.add("email", name, position, "found", started, status=finding.status.value,
                      cost_usd=_hit_cost_usd(source, person))
            if self.plan.validate_email and finding.status in NEEDS_VALIDATION:
                finding = self._validated(finding, calls, position)
                if finding is None:
                    continue
            if finding.status in CHARGEABLE_EMAIL_STATUSES:
                return finding
            if finding.status in _FALLBACK_RANK and (
                fallback is None or _FALLBACK_RANK[finding.status] < _FALLBACK_RANK[fallback.status]
            ):
                fallback = finding
        return fallback

    def _validated(self, finding: EmailFinding, calls: _CallLog, position: int) -> EmailFinding | None:
        """Our verifier's word on a vendor's email; None when it is rejected."""
        if self.validate is None:
            return finding
        started = time.perf_counter()
        try:
            result = self.validate(finding.address)
        except Exception as exc:
            self._failed(calls, "validation", finding.source, position, started, exc)
            return finding  # could not check: it stays the vendor's unchecked claim
        status = result.status
        if status in (EmailStatus.INVALID, EmailStatus.UNAVAILABLE):
            detail = ", ".join(result.reasons) or result.detail
            calls.add("validation", finding.source, position, "rejected", started, status=status.value, detail=detail)
            return None
        calls.add("validation", finding.source, position, "checked", started, status=status.value)
        if status in CHARGEABLE_EMAIL_STATUSES or status == EmailStatus.ACCEPT_ALL:
            return EmailFinding(finding.address, status, result.score, as_utc(result.checked_at), finding.source)
        return finding  # unknown after our check: still only the vendor's claim

    # ---- phones

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        calls = _CallLog(self.plan.team_id, person.id)
        collected: list[PhoneFinding] = []
        asked: list[PhoneFinding] = []  # what this call asked the sources for (not shared from earlier)
        try:
            collected = self._find_phones(person, calls, asked)
        finally:
            self._save(calls.records)
        outside = [p for p in asked if p.source != "database"]
        if outside:
            self._record_found(person.id, None, outside)
        return collected

    def _find_phones(self, person: PersonInfo, calls: _CallLog, asked: list[PhoneFinding]) -> list[PhoneFinding]:
        target = PhoneKind.MOBILE if self.wanted == DataKind.MOBILE else PhoneKind.OFFICE
        collected: list[PhoneFinding] = []
        seen: set[str] = set()
        answers = self._phone_pass(person)
        for position, name in enumerate(self.plan.phone_sources):
            if position < len(answers) and answers[position] is not None:
                phones = answers[position]  # asked, logged and recorded by this lookup's other request
            else:  # not asked yet, or it could not answer then: ask (again)
                answer = self._ask_phones(person, calls, position, name, target)
                if position < len(answers):
                    answers[position] = answer
                else:
                    answers.append(answer)
                phones = answer or []
                asked.extend(phones)
            for phone in phones:
                if phone.e164 not in seen:
                    seen.add(phone.e164)
                    collected.append(phone)
            if any(p.kind == target and p.status == PhoneStatus.VALID for p in phones):
                break
        return collected

    def _phone_pass(self, person: PersonInfo) -> list[list[PhoneFinding] | None]:
        """Each phone source's answer so far in this person's lookup, by position (None: it could not
        answer): the email request (an office phone) and the mobile request walk the same sources,
        so the later one goes on from where the earlier stopped and asks again only a source that
        failed. Outside a lookup scope, a pass of its own."""
        shared = shared_in_lookup()
        if shared is None:
            return []
        return shared.setdefault(("phone_pass", self.plan.team_id, person.id, self.plan.phone_sources), [])

    def _ask_phones(
        self, person: PersonInfo, calls: _CallLog, position: int, name: str, target: PhoneKind
    ) -> list[PhoneFinding] | None:
        """One phone source's answer, logged; None when it could not answer (failing or unknown)."""
        source = self.sources.get(name)
        if source is None:
            calls.add("phone", name, position, "unknown_source", time.perf_counter())
            return None
        started = time.perf_counter()
        try:
            phones = source.find_phones(person)
        except Exception as exc:
            self._failed(calls, "phone", name, position, started, exc)
            return None
        if not phones:
            calls.add("phone", name, position, "not_found", started)
            return []
        best = min(phones, key=lambda p: (p.status != PhoneStatus.VALID, p.kind != target))
        calls.add("phone", name, position, "found", started, status=best.status.value,
                  cost_usd=_hit_cost_usd(source, person))
        return phones

    # ---- helpers

    @staticmethod
    def _failed(calls: _CallLog, kind: str, name: str, position: int, started: float, exc: Exception) -> None:
        if isinstance(exc, SourceError):
            outcome = exc.outcome
            log.warning("source %s failed (%s): %s", name, outcome, exc)
        else:
            outcome = "error"
            log.exception("source %s raised unexpectedly", name)
        calls.add(kind, name, position, outcome, started, detail=f"{type(exc).__name__}: {exc}")


def _hit_cost_usd(source: ContactSource, person: PersonInfo) -> Decimal:
    """Our cost of a hit: an HTTP provider serves a person's email and phones from one vendor call
    and bills that call once (`hit_cost_usd`); any other source costs its price per hit."""
    once = getattr(source, "hit_cost_usd", None)
    return once(person) if once is not None else source.cost_per_hit_usd


def save_calls_in(conn: Connection, records: Sequence[SourceCallRecord]) -> None:
    """Log source calls in the caller's transaction (one multi-row insert)."""
    if not records:
        return
    conn.execute(insert(_SC), _call_rows(records))


def _call_rows(records: Sequence[SourceCallRecord]) -> list[dict]:
    return [
        dict(
            team_id=r.team_id,
            person_id=r.person_id,
            kind=r.kind,
            source=r.source,
            position=r.position,
            outcome=r.outcome,
            result_status=r.result_status,
            latency_ms=r.latency_ms,
            cost_usd_micros=r.cost_usd_micros,
            detail=r.detail,
            created_at=r.created_at,
        )
        for r in records
    ]


class Waterfalls:
    """The admin side (get/set a team's waterfall, read the call log) and the factory DataRequests
    uses to get a team's waterfall for a request."""

    def __init__(
        self,
        engine: Engine,
        sources: Mapping[str, ContactSource],
        *,
        accounts: Accounts | None = None,
        validate: Validate | None = None,
    ) -> None:
        if "database" not in sources:
            raise ValueError("the contributor database must be among the registered sources")
        self.engine = engine
        self.sources = dict(sources)
        self.accounts = accounts or Accounts(engine)
        self.validate = validate

    def source_names(self) -> list[str]:
        return list(self.sources)

    def get(self, team_ref: int | str) -> WaterfallPlan:
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            return self._plan_in(conn, team.id)

    def set(
        self,
        team_ref: int | str,
        *,
        email_sources: Sequence[str] | None = None,
        phone_sources: Sequence[str] | None = None,
        validate_email: bool | None = None,
        member_id: int | None = None,
    ) -> WaterfallPlan:
        """Change what is given; what is None stays as it was. Unknown or repeated names are refused."""
        team = self.accounts.team(team_ref)
        emails = self._checked("email", email_sources) if email_sources is not None else None
        phones = self._checked("phone", phone_sources) if phone_sources is not None else None
        insert_ = sqlite_insert if is_sqlite(self.engine) else pg_insert

        def op(conn: Connection) -> WaterfallPlan:
            current = self._plan_in(conn, team.id)
            values = dict(
                email_sources=list(emails if emails is not None else current.email_sources),
                phone_sources=list(phones if phones is not None else current.phone_sources),
                validate_email=current.validate_email if validate_email is None else validate_email,
                updated_by_member_id=member_id,
                updated_at=utcnow(),
            )
            conn.execute(
                insert_(_WC)
                .values(team_id=team.id, **values)
                .on_conflict_do_update(index_elements=["team_id"], set_=values)
            )
            return self._plan_in(conn, team.id)

        return run_write(self.engine, op)

    def for_team(self, team: TeamInfo, wanted: DataKind = DataKind.EMAIL) -> Waterfall:
        with read_transaction(self.engine) as conn:
            plan = self._plan_in(conn, team.id)
        return Waterfall(self.engine, plan, self.sources, wanted=wanted, validate=self.validate)

    def calls(self, team_ref: int | str, *, limit: int = 100) -> list[SourceCallRecord]:
        """The team's latest source calls, newest first."""
        team = self.accounts.team(team_ref)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(_SC).where(_SC.c.team_id == team.id).order_by(_SC.c.id.desc()).limit(limit)
            ).all()
        return [
            SourceCallRecord(
                team_id=r.team_id,
                person_id=r.person_id,
                kind=r.kind,
                source=r.source,
                position=r.position,
                outcome=r.outcome,
                result_status=r.result_status,
                latency_ms=r.latency_ms,
                cost_usd_micros=r.cost_usd_micros,
                detail=r.detail,
                created_at=as_utc(r.created_at),
            )
            for r in rows
        ]

    def _checked(self, kind: str, names: Sequence[str]) -> tuple[str, ...]:
        cleaned = tuple(n.strip().lower() for n in names if n.strip())
        if not cleaned:
            raise InvalidInput(f"waterfall {kind} sources: give at least one source")
        if len(cleaned) > MAX_SOURCES:
            raise InvalidInput(f"waterfall {kind} sources: at most {MAX_SOURCES}, got {len(cleaned)}")
        unknown = [n for n in cleaned if n not in self.sources]
        if unknown:
            raise InvalidInput(
                f"waterfall {kind} sources: unknown source {', '.join(map(repr, unknown))}; "
                f"registered: {', '.join(self.sources)}"
            )
        repeated = sorted({n for n in cleaned if cleaned.count(n) > 1})
        if repeated:
            raise InvalidInput(f"waterfall {kind} sources: {', '.join(map(repr, repeated))} listed more than once")
        return cleaned

    @staticmethod
    def _plan_in(conn: Connection, team_id: int) -> WaterfallPlan:
        row = conn.execute(select(_WC).where(_WC.c.team_id == team_id)).one_or_none()
        if row is None:
            return WaterfallPlan(team_id, DEFAULT_EMAIL_SOURCES, DEFAULT_PHONE_SOURCES, False, configured=False)
        return WaterfallPlan(
            team_id=team_id,
            email_sources=tuple(row.email_sources),
            phone_sources=tuple(row.phone_sources),
            validate_email=row.validate_email,
            configured=True,
            updated_at=as_utc(row.updated_at),
        )
