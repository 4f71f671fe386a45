"""Matching a row or a lookup to a person, and the people search front ends call.

Rules, tried in order; the first that finds anyone decides:
1. email            exact normalised address                    confidence 0.99
2. linkedin_url     canonical profile URL                       confidence 0.97
3. name_at_domain   folded first+last name at the company domain confidence 0.90
4. fuzzy_name       rapidfuzz similarity of the folded full name among the people of the company
                    (by domain or by company-name key), at least FUZZY_NAME_THRESHOLD; confidence
                    0.60-0.85 rising with the similarity (an exact name found only through the
                    company *name* lands here too, at 0.85: a name is weaker evidence than a domain).
Two different people whose confidences are within AMBIGUITY_MARGIN are returned as ambiguous with
both, never guessed.

Team view: with `team_id`, the team's private candidates (core/contributions.py) are matched by
the same rules alongside the shared people; another team's candidates are never read. A candidate
already linked to a shared person counts as that person.

Every lookup goes through an index (email_address.address, person.linkedin_url, company.domain,
company_name_key.name_key, person.company_id, person_name_key, contact_candidate's team indexes);
bulk callers use `match_contacts`, which also caches each company's people: for the call, or across
calls with a `CompanyCache` the caller keeps (an enrichment job's chunks share one, so 100,000 rows
at 2,000 companies read each company's people once, not once per chunk).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from rapidfuzz import fuzz, process
from sqlalchemy import Connection, Engine, or_, select

from core.errors import InvalidInput, TributaryError
from core.normalize import (
    ContactQuery,
    NormalizedContact,
    company_key,
    normalize_contact,
    parse_name,
    registrable_domain,
)
from storage.db import read_transaction
from storage.limits import MAX_NAME_CHARS
from storage.models import Company, CompanyNameKey, ContactCandidate, EmailAddress, Person, PersonNameKey
from storage.sql_lists import one_of

_PERSON = Person.__table__
_COMPANY = Company.__table__
_EMAIL = EmailAddress.__table__
_CKEY = CompanyNameKey.__table__
_PKEY = PersonNameKey.__table__
_CAND = ContactCandidate.__table__

# rapidfuzz token_sort_ratio (0-100) on folded full names: 88 accepts "Jon Smith"/"John Smith" and
# one-letter typos in ordinary names, and rejects "Jane Doe"/"John Doe".
FUZZY_NAME_THRESHOLD = 88.0
# Candidates whose confidences differ by less than this are "alike": ambiguous, not guessed.
AMBIGUITY_MARGIN = 0.03
EMAIL_CONFIDENCE = 0.99
LINKEDIN_CONFIDENCE = 0.97
NAME_AT_DOMAIN_CONFIDENCE = 0.90
FUZZY_MIN_CONFIDENCE = 0.60
FUZZY_MAX_CONFIDENCE = 0.85
# People search ranks looser matches (the bot shows a short list for a person to choose from).
SEARCH_MIN_SCORE = 70.0
MAX_SEARCH_LIMIT = 50
# A company given as a website URL can be long; anything longer is not a company.
MAX_COMPANY_QUERY_CHARS = 2048
# A name search without a company ranks people of the same folded surname: at most this many.
MAX_SAME_SURNAME_ROWS = 1000
MATCH_BATCH_SIZE = 500
# A CompanyCache starts over past any of these: memory stays bounded, and a long job sees a company's
# people as read at most CACHE_MAX_AGE_S ago (someone added or moved since is matched after that).
CACHE_MAX_COMPANIES = 5000
CACHE_MAX_PEOPLE = 100_000
CACHE_MAX_AGE_S = 300.0
# Companies sharing one name key that a name-only company is looked for in (lowest ids first).
MAX_COMPANIES_PER_NAME = 20


class MatchRule(StrEnum):
    EMAIL = "email"
    LINKEDIN_URL = "linkedin_url"
    NAME_AT_DOMAIN = "name_at_domain"
    FUZZY_NAME = "fuzzy_name"


class MatchOutcome(StrEnum):
    MATCHED = "matched"
    AMBIGUOUS = "ambiguous"
    NO_MATCH = "no_match"
    INVALID = "invalid"  # bulk only: the row could not be read (see `error`)


@dataclass(frozen=True)
class MatchCandidate:
    """A shared person (`person_id`) or one of the team's private candidates (`candidate_id`).
    Carries no email or phone: those are what data requests charge for."""

    person_id: int | None
    candidate_id: int | None
    full_name: str | None
    title: str | None
    company: str | None
    domain: str | None
    linkedin_url: str | None
    location: str | None
    confidence: float
    rule: MatchRule
    private: bool  # True: known only from this team's own uploads

    @property
    def entity(self) -> tuple[str, int]:
        return ("person", self.person_id) if self.person_id is not None else ("candidate", self.candidate_id or 0)


@dataclass(frozen=True)
class MatchResult:
    outcome: MatchOutcome
    best: MatchCandidate | None = None  # only when MATCHED
    candidates: tuple[MatchCandidate, ...] = ()  # the alike ones when AMBIGUOUS; (best,) when MATCHED
    row: int | None = None  # 1-based position in a bulk call
    error: str | None = None

    @property
    def rule(self) -> MatchRule | None:
        return self.best.rule if self.best else None

    @property
    def confidence(self) -> float:
        return self.best.confidence if self.best else 0.0


@dataclass
class _CompanyPeople:
    """A company's people, kept as columns: a row is scored against a large company by a dict
    lookup (exact name) and one rapidfuzz pass in C (fuzzy), not by Python code per person."""

    rows: list = field(default_factory=list)  # person rows (_people_select), id order
    full_keys: list[str] = field(default_factory=list)  # folded full name of rows[i]
    by_name: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (first, last) key -> indexes

    def add(self, row) -> None:
        first_key, last_key, full_key = row.first_key, row.last_key, row.full_key
        if full_key is None:  # a person written without name keys
            name = parse_name(row.full_name, row.first_name, row.last_name)
            first_key, last_key, full_key = name.first_key, name.last_key, name.full_key
        if first_key:
            self.by_name.setdefault((first_key, last_key), []).append(len(self.rows))
        self.rows.append(row)
        self.full_keys.append(full_key)

    def scored(self, contact: NormalizedContact, at_domain: bool) -> Iterator[tuple[object, MatchRule, float]]:
        """(row, rule, confidence) for each person whose name matches the contact's (_score_name's rules)."""
        exact = self.by_name.get((contact.first_key, contact.last_key), []) if contact.first_key else []
        rule, confidence = _exact_name(at_domain)
        for i in exact:
            yield self.rows[i], rule, confidence
        fuzzy = process.extract(
            contact.full_key, self.full_keys, scorer=fuzz.token_sort_ratio,
            score_cutoff=FUZZY_NAME_THRESHOLD, limit=None,
        )
        for _, score, i in fuzzy:
            if i not in exact:
                yield self.rows[i], MatchRule.FUZZY_NAME, fuzzy_confidence(score)


@dataclass
class _CompanyCache:
    """One snapshot of a CompanyCache. Threads may share it: an entry is published only once complete
    (a whole list, a filled _CompanyPeople), and a snapshot is never emptied in place."""

    people_by_company: dict[int, _CompanyPeople] = field(default_factory=dict)
    ids_by_domain: dict[str, list[int]] = field(default_factory=dict)
    ids_by_key: dict[str, list[int]] = field(default_factory=dict)
    people: int = 0  # person rows held (approximate under threads: only a bound reads it)


class CompanyCache:
    """Companies' people kept across `match_contacts` calls, safe to share between threads. A batch
    works on the current snapshot; a snapshot that is full (CACHE_MAX_COMPANIES, CACHE_MAX_PEOPLE) or
    older than `max_age_s` is replaced by an empty one for the batches that follow."""

    def __init__(self, *, max_age_s: float = CACHE_MAX_AGE_S, clock_s: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.clock_s = clock_s
        self._lock = threading.Lock()
        self._current = _CompanyCache()
        self._born_s = clock_s()

    def snapshot(self) -> _CompanyCache:
        with self._lock:
            current = self._current
            full = len(current.people_by_company) > CACHE_MAX_COMPANIES or current.people > CACHE_MAX_PEOPLE
            if full or self.clock_s() - self._born_s >= self.max_age_s:
                self._current, self._born_s = _CompanyCache(), self.clock_s()
            return self._current


def fuzzy_confidence(score: float) -> float:
    span = (score - FUZZY_NAME_THRESHOLD) / (100.0 - FUZZY_NAME_THRESHOLD)
    return round(FUZZY_MIN_CONFIDENCE + (FUZZY_MAX_CONFIDENCE - FUZZY_MIN_CONFIDENCE) * max(0.0, min(1.0, span)), 4)


def match_contact(engine: Engine, query: ContactQuery, *, team_id: int | None = None) -> MatchResult:
    """Raises InvalidInput (naming the field) for a query that cannot be read."""
    contact = normalize_contact(query)
    with read_transaction(engine) as conn:
        return match_in(conn, contact, team_id=team_id)


def match_contacts(
    engine: Engine,
    queries: Iterable[ContactQuery],
    *,
    team_id: int | None = None,
    batch_size: int = MATCH_BATCH_SIZE,
    cache: CompanyCache | None = None,
) -> Iterator[MatchResult]:
    """One result per query, in order, streamed. A bad row becomes an INVALID result saying which
    row and field; it never stops the batch. `cache`: kept by a caller that matches in several calls."""
    batch: list[tuple[int, ContactQuery]] = []
    cache = cache or CompanyCache()
    for row, query in enumerate(queries, start=1):
        batch.append((row, query))
        if len(batch) >= batch_size:
            yield from _match_batch(engine, batch, team_id, cache)
            batch = []
    if batch:
        yield from _match_batch(engine, batch, team_id, cache)


def _match_batch(
    engine: Engine, batch: list[tuple[int, ContactQuery]], team_id: int | None, companies: CompanyCache
) -> list[MatchResult]:
    cache = companies.snapshot()
    results: list[MatchResult] = []
    contacts: list[NormalizedContact | TributaryError] = []
    for _, query in batch:
        try:
            contacts.append(normalize_contact(query))
        except TributaryError as exc:
            contacts.append(exc)
    with read_transaction(engine) as conn:
        if team_id is not None and not _has_team_candidates(conn, team_id):
            team_id = None  # no private candidates to look through: skip their query on every row
        _prefetch_companies(conn, [c for c in contacts if isinstance(c, NormalizedContact)], cache)
        for (row, _), contact in zip(batch, contacts, strict=True):
            if isinstance(contact, TributaryError):
                results.append(MatchResult(MatchOutcome.INVALID, row=row, error=f"row {row}: {contact}"))
                continue
            result = match_in(conn, contact, team_id=team_id, cache=cache)
            results.append(MatchResult(result.outcome, result.best, result.candidates, row=row))
    return results


_ALL_RULES = frozenset(MatchRule)  # built once: iterating an Enum per row is a visible cost in jobs


def match_in(
    conn: Connection,
    contact: NormalizedContact,
    *,
    team_id: int | None = None,
    cache: _CompanyCache | None = None,
    rules: frozenset[MatchRule] | None = None,
) -> MatchResult:
    """Match inside the caller's transaction. `rules` limits which rules may answer (contributions
    use only the exact ones)."""
    cache = cache or _CompanyCache()
    allowed = rules or _ALL_RULES
    steps = (
        (MatchRule.EMAIL, _by_email),
        (MatchRule.LINKEDIN_URL, _by_linkedin),
    )
    for rule, finder in steps:
        if rule not in allowed:
            continue
        found = finder(conn, contact, team_id)
        if found:
            return _decide(found)
    if contact.has_name and (contact.domain or contact.company_key):
        fuzzy_allowed = MatchRule.FUZZY_NAME in allowed
        found = [c for c in _by_name_at_company(conn, contact, team_id, cache, fuzzy_allowed) if c.rule in allowed]
        if found:
            return _decide(found)
    return MatchResult(MatchOutcome.NO_MATCH)


def _decide(found: list[MatchCandidate]) -> MatchResult:
    merged = _merge(found)
    best = merged[0]
    alike = tuple(c for c in merged if best.confidence - c.confidence < AMBIGUITY_MARGIN)
    if len(alike) > 1:
        return MatchResult(MatchOutcome.AMBIGUOUS, candidates=alike)
    return MatchResult(MatchOutcome.MATCHED, best=best, candidates=(best,))


def _merge(found: list[MatchCandidate]) -> list[MatchCandidate]:
    """One entry per entity (a shared person seen directly and through a team candidate is one),
    keeping the most confident; best first, ties by id for a stable order."""
    best: dict[tuple[str, int], MatchCandidate] = {}
    for cand in found:
        current = best.get(cand.entity)
        # On equal confidence the shared view of a person wins over the team's private copy.
        if current is None or (cand.confidence, not cand.private) > (current.confidence, not current.private):
            best[cand.entity] = cand
    return sorted(best.values(), key=lambda c: (-c.confidence, c.entity))


# --- shared people --------------------------------------------------------------------------------

_PERSON_COLUMNS = (
    _PERSON.c.id,
    _PERSON.c.full_name,
    _PERSON.c.first_name,
    _PERSON.c.last_name,
    _PERSON.c.title,
    _PERSON.c.linkedin_url,
    _PERSON.c.location,
    _PERSON.c.company_id,
    _COMPANY.c.name.label("company"),
    _COMPANY.c.domain,
)


def _person_select():
    return select(*_PERSON_COLUMNS).outerjoin(_COMPANY, _COMPANY.c.id == _PERSON.c.company_id)


def _person_candidate(row, rule: MatchRule, confidence: float) -> MatchCandidate:
    return MatchCandidate(
        person_id=row.id,
        candidate_id=None,
        full_name=row.full_name,
        title=row.title,
        company=row.company,
        domain=row.domain,
        linkedin_url=row.linkedin_url,
        location=row.location,
        confidence=confidence,
        rule=rule,
        private=False,
    )


def _candidate_candidate(row, rule: MatchRule, confidence: float) -> MatchCandidate:
    return MatchCandidate(
        person_id=row.person_id,
        candidate_id=None if row.person_id is not None else row.id,
        full_name=row.full_name,
        title=row.title,
        company=row.company,
        domain=row.domain,
        linkedin_url=row.linkedin_url,
        location=row.location,
        confidence=confidence,
        rule=rule,
        private=True,
    )


def _team_candidates(conn: Connection, team_id: int | None, *conditions) -> list:
    if team_id is None:
        return []
    return conn.execute(select(_CAND).where(_CAND.c.team_id == team_id, *conditions).order_by(_CAND.c.id)).all()


def _has_team_candidates(conn: Connection, team_id: int) -> bool:
    return conn.execute(select(_CAND.c.id).where(_CAND.c.team_id == team_id).limit(1)).first() is not None


def _by_email(conn: Connection, contact: NormalizedContact, team_id: int | None) -> list[MatchCandidate]:
    if contact.email is None:
        return []
    address = contact.email.address
    person_id = select(_EMAIL.c.person_id).where(_EMAIL.c.address == address).scalar_subquery()
    rows = conn.execute(_person_select().where(_PERSON.c.id == person_id)).all()
    found = [_person_candidate(r, MatchRule.EMAIL, EMAIL_CONFIDENCE) for r in rows]
    found += [
        _candidate_candidate(r, MatchRule.EMAIL, EMAIL_CONFIDENCE)
        for r in _team_candidates(conn, team_id, _CAND.c.email == address)
    ]
    return found


def _by_linkedin(conn: Connection, contact: NormalizedContact, team_id: int | None) -> list[MatchCandidate]:
    if contact.linkedin_url is None:
        return []
    rows = conn.execute(_person_select().where(_PERSON.c.linkedin_url == contact.linkedin_url)).all()
    found = [_person_candidate(r, MatchRule.LINKEDIN_URL, LINKEDIN_CONFIDENCE) for r in rows]
    found += [
        _candidate_candidate(r, MatchRule.LINKEDIN_URL, LINKEDIN_CONFIDENCE)
        for r in _team_candidates(conn, team_id, _CAND.c.linkedin_url == contact.linkedin_url)
    ]
    return found


def _company_ids(conn: Connection, domain: str | None, key: str, cache: _CompanyCache) -> tuple[list[int], list[int]]:
    """(companies with this domain, companies with this name key but not this domain)."""
    by_domain: list[int] = []
    if domain:
        if domain not in cache.ids_by_domain:
            cache.ids_by_domain[domain] = list(
                conn.execute(select(_COMPANY.c.id).where(_COMPANY.c.domain == domain)).scalars()
            )
        by_domain = cache.ids_by_domain[domain]
    by_key: list[int] = []
    if key:
        if key not in cache.ids_by_key:
            cache.ids_by_key[key] = list(
                conn.execute(
                    select(_CKEY.c.company_id).where(_CKEY.c.name_key == key).order_by(_CKEY.c.company_id)
                ).scalars()
            )
        by_key = [i for i in cache.ids_by_key[key] if i not in by_domain]
    return by_domain, by_key


def _prefetch_companies(conn: Connection, contacts: list[NormalizedContact], cache: _CompanyCache) -> None:
    """Fill the cache for a whole batch in three reads (companies by domain, by name key, their
    people) instead of a few per row."""
    named = [c for c in contacts if c.has_name]
    domains = sorted({c.domain for c in named if c.domain and c.domain not in cache.ids_by_domain})
    keys = sorted({c.company_key for c in named if c.company_key and c.company_key not in cache.ids_by_key})
    _fill(conn, cache.ids_by_domain, domains, _COMPANY.c.id, _COMPANY.c.domain)
    _fill(conn, cache.ids_by_key, keys, _CKEY.c.company_id, _CKEY.c.name_key)
    wanted: set[int] = set()
    for c in named:
        by_domain = cache.ids_by_domain.get(c.domain, []) if c.domain else []
        wanted.update(by_domain)
        if not by_domain and c.company_key:
            wanted.update(cache.ids_by_key.get(c.company_key, [])[:MAX_COMPANIES_PER_NAME])
    missing = sorted(wanted - cache.people_by_company.keys())
    if missing:
        fetched = {company_id: _CompanyPeople() for company_id in missing}
        people = _people_select().where(one_of(conn, _PERSON.c.company_id, missing)).order_by(_PERSON.c.id)
        rows = conn.execute(people).all()  # fetched at once: streaming fetches one row per call
        for row in rows:
            fetched[row.company_id].add(row)
        cache.people_by_company.update(fetched)  # published once filled (threads may share the cache)
        cache.people += len(rows)


def _fill(conn: Connection, ids_by: dict[str, list[int]], values: list[str], id_column, value_column) -> None:
    """ids_by[value] = the ids of the companies with that value (lowest first), for every value, in one read."""
    if not values:
        return
    found: dict[str, list[int]] = {value: [] for value in values}
    rows = conn.execute(select(id_column, value_column).where(one_of(conn, value_column, values)).order_by(id_column))
    for company_id, value in rows:
        found[value].append(company_id)
    ids_by.update(found)  # published whole: another thread never reads a list being filled


def _people_select():
    return (
        _person_select()
        .add_columns(_PKEY.c.first_key, _PKEY.c.last_key, _PKEY.c.full_key)
        .outerjoin(_PKEY, _PKEY.c.person_id == _PERSON.c.id)
    )


def _people_at(conn: Connection, company_id: int, cache: _CompanyCache) -> _CompanyPeople:
    """The company's people; name keys from person_name_key, computed only for a person written
    without them."""
    people = cache.people_by_company.get(company_id)
    if people is None:
        people = _CompanyPeople()
        rows = conn.execute(_people_select().where(_PERSON.c.company_id == company_id).order_by(_PERSON.c.id)).all()
        for row in rows:
            people.add(row)
        cache.people_by_company[company_id] = people
        cache.people += len(rows)
    return people


def _exact_name(at_domain: bool) -> tuple[MatchRule, float]:
    """The same folded first and last name: at the domain, or at a company found only by its name."""
    if at_domain:
        return MatchRule.NAME_AT_DOMAIN, NAME_AT_DOMAIN_CONFIDENCE
    return MatchRule.FUZZY_NAME, FUZZY_MAX_CONFIDENCE


def _score_name(contact: NormalizedContact, first_key: str, last_key: str, full_key: str, at_domain: bool):
    """(rule, confidence) or None (a team's private candidate; a company's people: _CompanyPeople)."""
    if first_key and first_key == contact.first_key and last_key == contact.last_key:
        return _exact_name(at_domain)
    score = fuzz.token_sort_ratio(contact.full_key, full_key)
    if score >= FUZZY_NAME_THRESHOLD:
        return MatchRule.FUZZY_NAME, fuzzy_confidence(score)
    return None


def _by_name_at_company(
    conn: Connection, contact: NormalizedContact, team_id: int | None, cache: _CompanyCache, fuzzy_allowed: bool = True
) -> list[MatchCandidate]:
    found: list[MatchCandidate] = []
    by_domain, by_key = _company_ids(conn, contact.domain, contact.company_key, cache)
    # A known domain decides which company is meant; the name is only a fallback, and a common one
    # ("Consulting") must not fan out to every company that shares it.
    if by_domain or not fuzzy_allowed:
        by_key = []
    by_key = by_key[:MAX_COMPANIES_PER_NAME]
    for company_ids, at_domain in ((by_domain, True), (by_key, False)):
        for company_id in company_ids:
            for row, rule, confidence in _people_at(conn, company_id, cache).scored(contact, at_domain):
                found.append(_person_candidate(row, rule, confidence))
    if team_id is not None:
        where = []
        if contact.domain:
            where.append(_CAND.c.domain == contact.domain)
        if contact.company_key:
            where.append(_CAND.c.company_key == contact.company_key)
        for row in _team_candidates(conn, team_id, or_(*where)):
            at_domain = bool(contact.domain) and row.domain == contact.domain
            scored = _score_name(contact, row.first_key, row.last_key, row.full_key, at_domain)
            if scored:
                found.append(_candidate_candidate(row, *scored))
    return found


# --- people search --------------------------------------------------------------------------------


def search_people(
    engine: Engine, name: str, company: str | None = None, *, team_id: int | None = None, limit: int = 5
) -> list[MatchCandidate]:
    """Ranked people for "Jane Doe at Acme": best first, at most `limit`. `company` may be a name or
    a domain/website. Without a company, people whose folded last name equals the query's are ranked.
    Raises InvalidInput for an empty or overlong name, or a limit outside 1..MAX_SEARCH_LIMIT."""
    if not name or not name.strip():
        raise InvalidInput("name: give a person's name to search for")
    if len(name) > MAX_NAME_CHARS or (company is not None and len(company) > MAX_COMPANY_QUERY_CHARS):
        raise InvalidInput(
            f"name/company: too long (name at most {MAX_NAME_CHARS}, "
            f"company at most {MAX_COMPANY_QUERY_CHARS} characters)"
        )
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise InvalidInput(f"limit: must be between 1 and {MAX_SEARCH_LIMIT}")
    wanted = parse_name(name)
    domain, key = _company_terms(company)
    found: list[MatchCandidate] = []
    with read_transaction(engine) as conn:
        cache = _CompanyCache()
        if domain or key:
            by_domain, by_key = _company_ids(conn, domain, key, cache)
            companies = [_people_at(conn, cid, cache) for cid in by_domain + by_key]
            keyed = [pair for people in companies for pair in zip(people.rows, people.full_keys, strict=True)]
        else:
            stmt = _person_select().add_columns(_PKEY.c.full_key).join(_PKEY, _PKEY.c.person_id == _PERSON.c.id)
            same_surname = stmt.where(_PKEY.c.last_key == (wanted.last_key or wanted.full_key))
            rows = conn.execute(same_surname.limit(MAX_SAME_SURNAME_ROWS)).all()
            keyed = [(row, row.full_key) for row in rows]
        for row, full_key in keyed:
            score = _search_score(wanted.full_key, full_key)
            if score >= SEARCH_MIN_SCORE:
                found.append(_person_candidate(row, MatchRule.FUZZY_NAME, round(score / 100.0, 4)))
        if team_id is not None:
            if domain:
                where = _CAND.c.domain == domain
            elif key:
                where = _CAND.c.company_key == key
            else:
                where = _CAND.c.last_key == (wanted.last_key or wanted.full_key)
            for row in _team_candidates(conn, team_id, where):
                score = _search_score(wanted.full_key, row.full_key)
                if score >= SEARCH_MIN_SCORE:
                    found.append(_candidate_candidate(row, MatchRule.FUZZY_NAME, round(score / 100.0, 4)))
    return _merge(found)[:limit]


def _search_score(wanted: str, full_key: str) -> float:
    return float(fuzz.token_sort_ratio(wanted, full_key))


def _company_terms(company: str | None) -> tuple[str | None, str]:
    """A company given as "acme.com" or a URL is a domain; anything else is a name."""
    if company is None or not company.strip():
        return None, ""
    text = company.strip()
    if "." in text and " " not in text:
        try:
            return registrable_domain(text), ""
        except InvalidInput:
            pass
    return None, company_key(text)
