"""Matching and contribution throughput on a seeded contributor database.

    .venv/bin/python -m benchmarks.matching [--people 50000 --companies 2000 --rows 20000] [--db URL]

Seeds companies and people with bulk inserts (plus core.people.name_index.reindex_name_keys), then times:
match_contacts over `rows` queries mixing the four rules and misses, search_people, and contribute
for `rows // 4` records from two teams (the second upload promotes). Default database: a fresh
SQLite file under /tmp.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import insert

from core.accounts import Accounts
from core.contributions import ContactRecord, Contributions
from core.normalize import ContactQuery
from core.people.matching import match_contacts, search_people
from core.people.name_index import reindex_name_keys
from storage.db import make_engine, run_write
from storage.migrate import upgrade
from storage.models import Company, EmailAddress, Person
from storage.models.contributor import SourceKind
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow

FIRST = ["Jane", "John", "José", "Ana", "Ravi", "Mei", "Olga", "Tom", "Sara", "Liam", "Noah", "Emma", "Zoë", "Ali"]
LAST = ["Doe", "Smith", "Müller", "Patel", "Chen", "Ivanova", "Brown", "García", "Nguyen", "Kim", "Silva", "Rossi"]


def seed(engine, people: int, companies: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    now = utcnow()
    company_rows = [dict(name=f"Company {i} Inc", domain=f"company{i}.test", created_at=now) for i in range(companies)]
    run_write(engine, lambda conn: conn.execute(insert(Company.__table__), company_rows))
    made: list[tuple[str, str, str, str]] = []
    batch = 5000
    for start in range(0, people, batch):
        rows, emails = [], []
        for i in range(start, min(people, start + batch)):
            first, last = rng.choice(FIRST), rng.choice(LAST) + str(i)
            company = rng.randrange(companies)
            rows.append(
                dict(
                    id=i + 1,
                    first_name=first,
                    last_name=last,
                    full_name=f"{first} {last}",
                    company_id=company + 1,
                    linkedin_url=f"https://www.linkedin.com/in/p{i}",
                    updated_at=now,
                )
            )
            address = f"p{i}@company{company}.test"
            emails.append(
                dict(
                    person_id=i + 1,
                    address=address,
                    status=EmailStatus.VERIFIED.value,
                    score=90,
                    reasons=[],
                    created_at=now,
                )
            )
            made.append((first, last, f"company{company}.test", address))

        def write(conn, rows=rows, emails=emails) -> None:
            conn.execute(insert(Person.__table__), rows)
            conn.execute(insert(EmailAddress.__table__), emails)

        run_write(engine, write)
    reindex_name_keys(engine)
    return made


def queries(made, rows: int, rng: random.Random) -> list[ContactQuery]:
    out = []
    for n in range(rows):
        first, last, domain, address = rng.choice(made)
        kind = n % 5
        if kind == 0:
            out.append(ContactQuery(email=address))
        elif kind == 1:
            out.append(ContactQuery(linkedin_url=f"linkedin.com/in/p{address.split('@')[0][1:]}"))
        elif kind == 2:
            out.append(ContactQuery(first_name=first, last_name=last, domain=domain))
        elif kind == 3:
            company = domain.split(".")[0].replace("company", "Company ")
            out.append(ContactQuery(full_name=f"{first} {last}x", company=company))
        else:
            out.append(ContactQuery(full_name=f"Nobody Here{n}", domain=domain))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(7)
    t0 = time.perf_counter()
    made = seed(engine, args.people, args.companies, rng)
    print(f"seeded {args.people} people at {args.companies} companies in {time.perf_counter() - t0:.1f}s ({url})")

    qs = queries(made, args.rows, rng)
    t0 = time.perf_counter()
    outcomes = Counter((r.outcome.value, r.rule.value if r.rule else "-") for r in match_contacts(engine, qs))
    elapsed = time.perf_counter() - t0
    print(f"match_contacts: {args.rows} rows in {elapsed:.2f}s = {args.rows / elapsed:,.0f} rows/s; {dict(outcomes)}")

    t0 = time.perf_counter()
    for first, last, domain, _ in made[:500]:
        search_people(engine, f"{first} {last}", domain.split(".")[0].replace("company", "Company "))
    elapsed = time.perf_counter() - t0
    print(f"search_people with company: 500 searches in {elapsed:.2f}s = {500 / elapsed:,.0f}/s")

    accounts = Accounts(engine)
    a, b = accounts.create_team("bench-a"), accounts.create_team("bench-b")
    contributions = Contributions(engine, "bench-key")
    records = [
        ContactRecord(
            full_name=f"New Person{n}",
            company="Fresh Co",
            domain=f"fresh{n % 300}.test",
            email=f"new{n}@fresh{n % 300}.test",
            title="CTO",
        )
        for n in range(args.rows // 4)
    ]
    for team in (a, b):
        t0 = time.perf_counter()
        summary = contributions.contribute(team.id, records, SourceKind.CSV)
        elapsed = time.perf_counter() - t0
        print(
            f"contribute ({team.name}): {len(records)} records in {elapsed:.2f}s = {len(records) / elapsed:,.0f}/s; "
            f"shared={summary.shared} candidates={summary.candidates}"
        )


if __name__ == "__main__":
    main()
