"""The large demo world: companies with domains and address patterns, people, known emails and phones,
and the description of the demo mail servers those domains run — all from one seed, so every run
builds the same world (Faker with a fixed seed, and a random.Random of the same seed).

Everything uses the reserved `.test` TLD and fictional phone ranges (NANP 555-0100..0199), so no
demo value can reach a real mailbox or phone. The mail-server description (`mail_servers`) says,
per domain, how its simulated server behaves (catch-all, greylisting, ...) and which mailboxes
exist; the loopback mail internet (tests/mailnet) and the examples build their servers from it.

Inserts are bulk (executemany, one transaction per table and chunk); seeding twice does nothing.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from faker import Faker
from sqlalchemy import Connection, Engine, insert, select

from core.people.name_index import reindex_name_keys
from storage.db import read_transaction, run_write
from storage.models import Company, EmailAddress, Person, Phone
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import utcnow

_COMPANY = Company.__table__
_PERSON = Person.__table__
_EMAIL = EmailAddress.__table__
_PHONE = Phone.__table__

DEMO_SEED = 20_261_123
DEFAULT_COMPANIES = 2_000
DEFAULT_PEOPLE = 50_000
INSERT_CHUNK = 5_000
POOL_SIZE = 3_000  # distinct first and last names each (9 million combinations)
_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "pt_BR"]

# Address patterns a company uses for its people, by weight (what the email finder learns).
PATTERNS: tuple[tuple[str, int], ...] = (
    ("{first}.{last}", 40),
    ("{f}{last}", 20),
    ("{first}", 10),
    ("{first}_{last}", 8),
    ("{first}{last}", 8),
    ("{last}.{first}", 6),
    ("{f}.{last}", 8),
)
# How a company's simulated mail server behaves, by weight (the behaviours tests/mailnet scripts).
BEHAVIOURS: tuple[tuple[str, int], ...] = (
    ("normal", 70),
    ("catch_all", 10),
    ("greylist", 8),
    ("greylist_forever", 2),
    ("blocked", 3),
    ("refused", 2),
    ("a_only", 3),
    ("null_mx", 2),
)
# Share of people with a known email / mobile / office phone in the contributor database.
KNOWN_EMAIL_SHARE = 0.6
MOBILE_SHARE = 0.3
OFFICE_SHARE = 0.2
# NANP area codes for the fictional 555-01XX numbers.
_AREA_CODES = (201, 212, 213, 303, 305, 312, 404, 415, 512, 617, 646, 702, 713, 718, 808, 917, 949, 972)


@dataclass(frozen=True)
class DemoCompany:
    name: str
    domain: str
    pattern: str
    behaviour: str
    country_code: str


@dataclass(frozen=True)
class DemoMailDomain:
    """One domain's simulated mail server: how it behaves and which mailboxes (local parts) exist."""

    domain: str
    behaviour: str  # one of BEHAVIOURS
    pattern: str
    mailboxes: tuple[str, ...]


@dataclass(frozen=True)
class DemoWorldSummary:
    created: bool  # False: the world was already there
    companies: int
    people: int
    emails: int
    phones: int


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", ascii_text)


def local_part(pattern: str, first: str, last: str) -> str:
    first_s, last_s = _slug(first) or "x", _slug(last) or "x"
    return pattern.format(first=first_s, last=last_s, f=first_s[0])


def companies(seed: int = DEMO_SEED, count: int = DEFAULT_COMPANIES) -> list[DemoCompany]:
    fake = Faker(_LOCALES)
    fake.seed_instance(seed)
    rng = random.Random(seed)
    seen: set[str] = {"acme", "globex", "initech", "demo"}  # the small demo's domains
    result = []
    while len(result) < count:
        name = fake.company()
        base = _slug(name)[:40] or "company"
        slug, n = base, 1
        while slug in seen:
            n += 1
            slug = f"{base}{n}"
        seen.add(slug)
        country = rng.choice(["US", "US", "US", "GB", "DE", "FR", "ES", "BR"])
        pattern, behaviour = _weighted(rng, PATTERNS), _weighted(rng, BEHAVIOURS)
        result.append(DemoCompany(name[:255], f"{slug}.test", pattern, behaviour, country))
    return result


@dataclass(frozen=True)
class _DemoPerson:
    first: str
    last: str
    title: str
    company: int  # index into companies()
    location: str
    linkedin: str
    email: str | None
    email_status: EmailStatus | None
    mobile: str | None
    office: str | None


@dataclass(frozen=True)
class _Pools:
    first_names: list[str]
    last_names: list[str]
    jobs: list[str]
    cities: list[str]


def _pools(seed: int) -> _Pools:
    """Faker is slow per call (~0.1 ms): draw pools once, then combine them with a seeded Random."""
    fake = Faker(_LOCALES)
    fake.seed_instance(seed + 1)
    return _Pools(
        first_names=[fake.first_name() for _ in range(POOL_SIZE)],
        last_names=[fake.last_name() for _ in range(POOL_SIZE)],
        jobs=[fake.job()[:255] for _ in range(POOL_SIZE // 4)],
        cities=[fake.city() for _ in range(POOL_SIZE // 4)],
    )


def _people(seed: int, world: list[DemoCompany], count: int) -> Iterator[_DemoPerson]:
    pools = _pools(seed)
    rng = random.Random(seed + 1)
    used_addresses: set[str] = set()
    for i in range(count):
        first, last = rng.choice(pools.first_names), rng.choice(pools.last_names)
        company_index = rng.randrange(len(world))
        company = world[company_index]
        address = f"{local_part(company.pattern, first, last)}@{company.domain}"
        email = status = None
        if rng.random() < KNOWN_EMAIL_SHARE and address not in used_addresses:
            used_addresses.add(address)
            email = address
            status = {
                "normal": EmailStatus.VERIFIED,
                "catch_all": EmailStatus.ACCEPT_ALL,
                "greylist": EmailStatus.VERIFIED,
            }.get(company.behaviour, EmailStatus.UNVERIFIED)
        mobile = f"+1{rng.choice(_AREA_CODES)}5550{rng.randrange(100, 200)}" if rng.random() < MOBILE_SHARE else None
        office = f"+1{rng.choice(_AREA_CODES)}5550{rng.randrange(100, 200)}" if rng.random() < OFFICE_SHARE else None
        if office == mobile:
            office = None
        yield _DemoPerson(
            first=first,
            last=last,
            title=rng.choice(pools.jobs),
            company=company_index,
            location=f"{rng.choice(pools.cities)}, {company.country_code}"[:255],
            linkedin=f"https://www.linkedin.com/in/{_slug(first)}-{_slug(last)}-{i:05d}",
            email=email,
            email_status=status,
            mobile=mobile,
            office=office,
        )


def mail_servers(
    seed: int = DEMO_SEED, company_count: int = DEFAULT_COMPANIES, people: int = DEFAULT_PEOPLE
) -> list[DemoMailDomain]:
    """The demo mail internet: every demo company's domain, its server's behaviour, and the mailboxes
    of all its people (known to the database or not — the finder can discover the rest)."""
    world = companies(seed, company_count)
    boxes: dict[int, list[str]] = {i: [] for i in range(len(world))}
    for person in _people(seed, world, people):
        boxes[person.company].append(local_part(world[person.company].pattern, person.first, person.last))
    return [
        DemoMailDomain(c.domain, c.behaviour, c.pattern, tuple(sorted(set(boxes[i])))) for i, c in enumerate(world)
    ]


def seed_world(
    engine: Engine,
    *,
    seed: int = DEMO_SEED,
    company_count: int = DEFAULT_COMPANIES,
    people: int = DEFAULT_PEOPLE,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> DemoWorldSummary:
    """Insert the world unless its first company is already there (then nothing changes)."""
    world = companies(seed, company_count)
    with read_transaction(engine) as conn:
        if conn.execute(select(_COMPANY.c.id).where(_COMPANY.c.domain == world[0].domain)).scalar() is not None:
            return DemoWorldSummary(False, 0, 0, 0, 0)
    now = utcnow()
    company_ids = _seed_companies(engine, world, now)
    if on_progress:
        on_progress("companies", len(world), len(world))
    emails, phones = _seed_people(engine, _people(seed, world, people), company_ids, people, now, on_progress)
    # Name keys let matching find "first last at company" through an index (core/people/name_index.py).
    reindex_name_keys(engine)
    if on_progress:
        on_progress("name index", people, people)
    return DemoWorldSummary(True, len(world), people, emails, phones)


def _seed_companies(engine: Engine, world: list[DemoCompany], now: datetime) -> list[int]:
    """Insert the companies, INSERT_CHUNK per transaction; returns their ids in `world` order."""
    company_ids: list[int] = []
    for start in range(0, len(world), INSERT_CHUNK):
        part = world[start : start + INSERT_CHUNK]
        rows = [dict(name=c.name, domain=c.domain, country_code=c.country_code, created_at=now) for c in part]
        company_ids += run_write(
            engine,
            lambda conn, rows=rows: list(
                conn.execute(insert(_COMPANY).returning(_COMPANY.c.id, sort_by_parameter_order=True), rows).scalars()
            ),
        )
    return company_ids


def _seed_people(
    engine: Engine,
    generated: Iterator[_DemoPerson],
    company_ids: list[int],
    people: int,
    now: datetime,
    on_progress: Callable[[str, int, int], None] | None,
) -> tuple[int, int]:
    """Insert the people with their emails and phones, INSERT_CHUNK people per transaction; returns
    how many emails and phones were inserted."""
    emails = phones = done = 0
    fresh = now - timedelta(days=2)
    while True:
        batch = [p for _, p in zip(range(INSERT_CHUNK), generated, strict=False)]
        if not batch:
            break
        e, ph = run_write(engine, lambda conn, batch=batch: _insert_people(conn, batch, company_ids, now, fresh))
        emails += e
        phones += ph
        done += len(batch)
        if on_progress:
            on_progress("people", done, people)
    return emails, phones


def _insert_people(
    conn: Connection, batch: list[_DemoPerson], company_ids: list[int], now: datetime, fresh: datetime
) -> tuple[int, int]:
    """One batch of people, then their emails and phones (in the caller's transaction)."""
    person_rows = [
        dict(
            first_name=p.first[:128],
            last_name=p.last[:128],
            full_name=f"{p.first} {p.last}"[:255],
            title=p.title,
            company_id=company_ids[p.company],
            linkedin_url=p.linkedin,
            location=p.location,
            updated_at=now,
        )
        for p in batch
    ]
    returning = insert(_PERSON).returning(_PERSON.c.id, sort_by_parameter_order=True)
    people = list(zip(conn.execute(returning, person_rows).scalars(), batch, strict=True))
    email_rows = _email_rows(people, now, fresh)
    phone_rows = _phone_rows(people, now, fresh)
    if email_rows:
        conn.execute(insert(_EMAIL), email_rows)
    if phone_rows:
        conn.execute(insert(_PHONE), phone_rows)
    return len(email_rows), len(phone_rows)


def _email_rows(people: list[tuple[int, _DemoPerson]], now: datetime, fresh: datetime) -> list[dict]:
    return [
        dict(
            person_id=pid,
            address=p.email,
            status=p.email_status.value,
            score=95 if p.email_status == EmailStatus.VERIFIED else 55,
            reasons=[],
            checked_at=fresh if p.email_status != EmailStatus.UNVERIFIED else None,
            created_at=now,
        )
        for pid, p in people
        if p.email and p.email_status
    ]


def _phone_rows(people: list[tuple[int, _DemoPerson]], now: datetime, fresh: datetime) -> list[dict]:
    return [
        dict(
            person_id=pid,
            e164=number,
            kind=kind.value,
            line_type="mobile" if kind == PhoneKind.MOBILE else "fixed_line",
            status=PhoneStatus.VALID.value,
            checked_at=fresh,
            created_at=now,
        )
        for pid, p in people
        for number, kind in ((p.mobile, PhoneKind.MOBILE), (p.office, PhoneKind.OFFICE))
        if number
    ]
