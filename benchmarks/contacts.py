"""Team contacts at scale: keyset pages of a filtered list and a large CSV export.

    .venv/bin/python -m benchmarks.contacts [--contacts 500000] [--repeat 200] [--db URL] [--no-export]

Seeds one team with `contacts` contacts (people with one email each, a status mix, a third with a
mobile; three owners; five sources; saved over a year) by bulk inserts, then times, through
core.team_contacts (TeamContacts.find):
- the first page and the 1,000th page (25 per page) of `status:verified owner:<member 1>`, saved
  newest first, p50/p99 over `repeat` runs each;
- beside each, a plain indexed `SELECT … JOIN … WHERE … ORDER BY created_at DESC, id DESC LIMIT 26`
  of the same page on the same database in the same run (checked to return the same ids), the two
  timed alternately after a warm-up;
- an export of the `export` contacts of one source (charged, 1 credit each, then streamed to a file)
  in a fresh child process: rows/s and the child's peak RSS; beside it, a plain SELECT of the same
  rows written with csv.writer.
Default database: a fresh SQLite file under /tmp. For PostgreSQL pass --db with an empty database;
a database an earlier run seeded is reused as it is (its export then charges nothing: not net-new).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

from core.accounts import Accounts
from core.errors import NotFound
from core.ledger import Ledger
from core.team_contacts import filters as q
from core.team_contacts.export import ContactExports
from core.team_contacts.models import ContactFilter, PageRequest, Sort
from core.team_contacts.service import TeamContacts
from storage.db import make_engine, read_transaction, run_write
from storage.migrate import upgrade
from storage.models import Company, EmailAddress, Member, Person, Phone, TeamContact
from storage.models.enums import ContactSource, EmailStatus

PAGE = 25
WARM_UP_RUNS = 10
DEEP_PAGE = 1000
BATCH_ROWS = 10_000
STATUSES = (
    [EmailStatus.VERIFIED] * 4 + [EmailStatus.ACCEPT_ALL] * 2
    + [EmailStatus.LIKELY_TO_ENGAGE, EmailStatus.UNVERIFIED, EmailStatus.INVALID, None]
)  # fmt: skip
SOURCES = [ContactSource.SLACK, ContactSource.SHEETS, ContactSource.CSV, ContactSource.API, ContactSource.CRM]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def seed(engine, contacts: int, rng: random.Random) -> tuple[int, list[int]]:
    accounts = Accounts(engine)
    accounts.create_plan("bench", monthly_credits=10_000_000, price_export_credits=1)
    team = accounts.create_team("bench", plan="bench")
    members = [accounts.add_member("bench", f"m{i}@bench.test").id for i in range(3)]
    now = datetime.now(UTC)
    companies = [dict(id=i + 1, name=f"Company {i}", domain=f"c{i}.test", created_at=now) for i in range(2000)]
    run_write(engine, lambda conn: conn.execute(insert(Company.__table__), companies))
    for start in range(0, contacts, BATCH_ROWS):
        people, emails, phones, saved = [], [], [], []
        for i in range(start, min(contacts, start + BATCH_ROWS)):
            pid = i + 1
            people.append(dict(id=pid, full_name=f"Person {i}", company_id=rng.randrange(2000) + 1, updated_at=now))
            status = rng.choice(STATUSES)
            if status is not None:
                emails.append(dict(person_id=pid, address=f"p{i}@bench.test", status=status.value, score=80,
                                   reasons=[], created_at=now))  # fmt: skip
            if rng.random() < 0.33:
                phones.append(dict(person_id=pid, e164=f"+1415{i:07d}", kind="mobile", line_type="mobile",
                                   status="valid", created_at=now))  # fmt: skip
            saved.append(dict(team_id=team.id, person_id=pid, created_by_member_id=members[0],
                              owner_member_id=rng.choice(members), source=rng.choice(SOURCES).value,
                              created_at=T0 + timedelta(seconds=rng.randrange(365 * 86400))))  # fmt: skip

        def write(conn, people=people, emails=emails, phones=phones, saved=saved) -> None:
            conn.execute(insert(Person.__table__), people)
            if emails:
                conn.execute(insert(EmailAddress.__table__), emails)
            if phones:
                conn.execute(insert(Phone.__table__), phones)
            conn.execute(insert(TeamContact.__table__), saved)

        run_write(engine, write)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return team.id, members


def plain_page(conn, team_id: int, owner: int, after: tuple | None) -> list[int]:
    """The baseline: the same page, with the same shown fields, by a plain indexed query (one email
    per person here, so a plain join finds it; phones are not read)."""
    tc, p, c, e, m = (t.__table__ for t in (TeamContact, Person, Company, EmailAddress, Member))
    stmt = (
        select(tc.c.id, tc.c.created_at, tc.c.source, tc.c.owner_member_id, p.c.full_name, p.c.title, c.c.name,
               c.c.domain, e.c.address, e.c.status, m.c.email)
        .join(p, p.c.id == tc.c.person_id)
        .outerjoin(c, c.c.id == p.c.company_id)
        .join(e, e.c.person_id == tc.c.person_id)
        .outerjoin(m, m.c.id == tc.c.owner_member_id)
        .where(tc.c.team_id == team_id, tc.c.owner_member_id == owner, e.c.status == "verified")
        .order_by(tc.c.created_at.desc(), tc.c.id.desc())
        .limit(PAGE + 1)
    )  # fmt: skip
    if after is not None:
        stmt = stmt.where(tc.c.created_at <= after[0], (tc.c.created_at < after[0]) | (tc.c.id < after[1]))
    return [row.id for row in conn.execute(stmt).all()][:PAGE]


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def timed_pair(ours, plain, repeat: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """p50/p99 (ms) of both, run alternately: on a shared machine the load then weighs on both alike
    (timed one after the other, a burst of load lands on one side only)."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        pair = ((ours, samples[0]), (plain, samples[1]))
        for fn, out in pair if i % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    return _p50_p99(samples[0]), _p50_p99(samples[1])


def pages(url: str, team_id: int, members: list[int], repeat: int) -> None:
    engine = make_engine(url)
    accounts = Accounts(engine)
    service = TeamContacts(engine, accounts)
    actor = accounts.member(members[0], team_id)
    f = ContactFilter(email_statuses=(EmailStatus.VERIFIED,), owner_ids=(members[0],))
    fingerprint = q.filter_fingerprint(f, Sort.SAVED_DESC)
    matching = service.count(actor, f)
    deep_page = max(2, min(DEEP_PAGE, matching // PAGE))  # a small run has fewer pages
    # The cursor of page 1,000: the key of the last row of page 999, found by the plain query.
    with read_transaction(engine) as conn:
        tc, e = TeamContact.__table__, EmailAddress.__table__
        row = conn.execute(
            select(tc.c.created_at, tc.c.id).join(e, e.c.person_id == tc.c.person_id)
            .where(tc.c.team_id == team_id, tc.c.owner_member_id == members[0], e.c.status == "verified")
            .order_by(tc.c.created_at.desc(), tc.c.id.desc()).offset(PAGE * (deep_page - 1) - 1).limit(1)
        ).one()  # fmt: skip
    deep = q.encode_cursor(fingerprint, (row.created_at, row.id))
    print(f"filter status:verified owner:m0 matches {matching} contacts; page size {PAGE}")
    for label, cursor, after in [("page 1", None, None), (f"page {deep_page}", deep, (row.created_at, row.id))]:
        ours = [c.id for c in service.find(actor, f, PageRequest(PAGE, cursor)).contacts]
        with read_transaction(engine) as conn:
            base = plain_page(conn, team_id, members[0], after)
        if ours != base:
            raise SystemExit(f"{label}: the service and the plain query disagree")

        def run_ours(cursor=cursor) -> None:
            service.find(actor, f, PageRequest(PAGE, cursor))

        def run_plain(after=after) -> None:
            with read_transaction(engine) as conn:
                plain_page(conn, team_id, members[0], after)

        for _ in range(WARM_UP_RUNS):
            run_ours()
            run_plain()
        (p50, p99), (b50, b99) = timed_pair(run_ours, run_plain, repeat)
        print(f"{label:>9}: find p50 {p50:.2f} ms p99 {p99:.2f} ms | plain SELECT p50 {b50:.2f} ms p99 {b99:.2f} ms"
              f" | ratio p50 {p50 / b50:.2f}x p99 {p99 / b99:.2f}x")  # fmt: skip


def _export_child(url: str, team_id: int, member_id: int, path: str, queue) -> None:
    engine = make_engine(url)
    accounts = Accounts(engine)
    ledger = Ledger(engine)
    contacts = TeamContacts(engine, accounts)
    exports = ContactExports(engine, contacts, accounts, ledger)
    actor = accounts.member(member_id, team_id)
    f = ContactFilter(sources=(ContactSource.CSV,))
    start = time.perf_counter()
    with open(path, "wb") as fh:
        result = exports.export(actor, f, fh, max_credits=10_000_000)
    elapsed = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((result.rows_written, result.credits_charged, elapsed, rss_kb))


def _plain_export_child(url: str, team_id: int, path: str, queue) -> None:
    engine = make_engine(url)
    tc, p, e = TeamContact.__table__, Person.__table__, EmailAddress.__table__
    start = time.perf_counter()
    rows = 0
    with engine.connect() as conn, open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            select(tc.c.id, p.c.full_name, e.c.address, e.c.status, tc.c.source, tc.c.created_at)
            .join(p, p.c.id == tc.c.person_id).outerjoin(e, e.c.person_id == tc.c.person_id)
            .where(tc.c.team_id == team_id, tc.c.source == "csv").order_by(tc.c.id)
        )  # fmt: skip
        for row in result:
            writer.writerow(row)
            rows += 1
    queue.put((rows, 0, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def export(url: str, team_id: int, member_id: int, workdir: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for label, target, args in [
        ("export (core)", _export_child, (url, team_id, member_id, str(workdir / "export.csv"))),
        ("plain SELECT + csv", _plain_export_child, (url, team_id, str(workdir / "plain.csv"))),
    ]:
        queue = ctx.Queue()
        child = ctx.Process(target=target, args=(*args, queue))
        child.start()
        rows, credits, elapsed, rss_kb = queue.get()
        child.join()
        print(f"{label:>18}: {rows} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
              f"{credits} credits; peak RSS {rss_kb / 1024:.1f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--db", default=None)
    parser.add_argument("--no-export", action="store_true", help="Time the pages only.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-contacts-"))
    url = args.db or f"sqlite:///{workdir / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    start = time.perf_counter()
    try:  # a database seeded by an earlier run is used as it is (its export is then free: not net-new)
        team = Accounts(engine).team("bench")
        team_id, members = team.id, [m.id for m in Accounts(engine).members("bench")]
    except NotFound:
        team_id, members = seed(engine, args.contacts, random.Random(17))
    with read_transaction(engine) as conn:
        n = conn.execute(select(func.count()).select_from(TeamContact.__table__)).scalar_one()
    print(f"{engine.dialect.name}: seeded {n} contacts in {time.perf_counter() - start:.0f} s (pid {os.getpid()})")
    engine.dispose()
    pages(url, team_id, members, args.repeat)
    if not args.no_export:
        export(url, team_id, members[0], workdir)


if __name__ == "__main__":
    main()
