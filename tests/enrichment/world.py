"""A small contact world and the job services over it, shared by the enrichment tests."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from core.accounts import Accounts
from core.data_requests import DataRequests
from core.enrichment.csv_enrich import CsvEnrichment
from core.enrichment.jobs import EnrichmentJobs
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person_in
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from core.sources.database import DatabaseSource
from storage.db import run_write
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus
from storage.timeutil import utcnow

DOMAIN = "initech.example"
HEADER = ["First Name", "Last Name", "Company", "Website", "Email", "Notes"]


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    email: str | None  # known to the database
    status: EmailStatus | None
    mobile: str | None
    company: str = "Initech"
    domain: str = DOMAIN


def people(n: int = 12, *, per_company: int | None = None) -> list[Person]:
    """`per_company`: spread the people over companies of that many (default: all at Initech), as
    a big file's people are; matching by name compares a row with its company's people."""
    out = []
    for i in range(n):
        kind = i % 4
        company, domain = "Initech", DOMAIN
        if per_company:
            company, domain = f"Initech {i // per_company}", f"initech{i // per_company}.example"
        status = [EmailStatus.VERIFIED, EmailStatus.VERIFIED, EmailStatus.ACCEPT_ALL, None][kind]
        email = f"p{i}.last{i}@{domain}" if status else None
        mobile = f"+1415{5550100 + i:07d}" if kind in (0, 2) else None
        out.append(Person(f"Pat{i}", f"Lastname{i}", email, status, mobile, company, domain))
    return out


def seed(engine: Engine, world: list[Person]) -> None:
    """The people, 500 to a transaction (a 2,000-person world seeds in seconds, not minutes)."""
    now = utcnow()
    new = [
        NewPerson(
            full_name=f"{p.first} {p.last}",
            first_name=p.first,
            last_name=p.last,
            title="Engineer",
            company=p.company,
            domain=p.domain,
            emails=[NewEmail(p.email, p.status, 90, now)] if p.email else [],
            phones=[NewPhone(p.mobile, PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")] if p.mobile else [],
        )
        for p in world
    ]
    for start in range(0, len(new), 500):
        part = new[start : start + 500]
        run_write(engine, lambda conn, part=part: [add_person_in(conn, person) for person in part])


def row(p: Person, note: str = "") -> list[str]:
    return [p.first, p.last, p.company, f"https://www.{p.domain}/about", "", note]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return path


class SlowSource(DatabaseSource):
    """The database source with network-like latency (so a job can be killed half-way)."""

    name = "slow-database"
    cost_per_hit_usd = Decimal(0)

    def __init__(self, engine: Engine, delay_s: float) -> None:
        super().__init__(engine)
        self.delay_s = delay_s

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        time.sleep(self.delay_s)
        return super().find_email(person)

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        time.sleep(self.delay_s)
        return super().find_phones(person)


def services(engine: Engine, *, delay_s: float = 0.0, workers: int = 4, flush_rows: int = 500) -> CsvEnrichment:
    accounts = Accounts(engine)
    source = SlowSource(engine, delay_s) if delay_s else DatabaseSource(engine)
    data_requests = DataRequests(engine, source, accounts=accounts, hold_timeout_s=60, lease_s=2)
    jobs = EnrichmentJobs(engine, data_requests, accounts=accounts, workers=workers, flush_rows=flush_rows)
    return CsvEnrichment(jobs)
