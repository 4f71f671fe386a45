"""A CompanyCache kept across match_contacts calls (both databases): a company's people are read
once, the answers are those of a fresh read, and the snapshot starts over when it is too old or too
full; threads sharing one cache never see a company half-read."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, event

from core.enrichment.chunks import MAX_CACHED_JOBS, ChunkEngine
from core.normalize import ContactQuery
from core.people import matching
from core.people.contacts import NewPerson, add_person
from core.people.matching import CompanyCache, MatchOutcome, match_contacts
from core.services import Services
from core.settings import Settings

COMPANIES = 6
PEOPLE_PER_COMPANY = 5


def _world(engine: Engine) -> list[ContactQuery]:
    queries = []
    for c in range(COMPANIES):
        for p in range(PEOPLE_PER_COMPANY):
            name = f"Person{p} Worker{c}x{p}"
            add_person(engine, NewPerson(full_name=name, company=f"Company {c}", domain=f"company{c}.test"))
            queries.append(ContactQuery(full_name=name, domain=f"company{c}.test"))
    return queries


def _people_reads(engine: Engine) -> list[str]:
    reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "person_name_key" in statement and "company_id" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return reads


def _best_ids(engine: Engine, queries: list[ContactQuery], cache: CompanyCache | None) -> list[int | None]:
    return [r.best.person_id if r.best else None for r in match_contacts(engine, queries, cache=cache, batch_size=10)]


def test_a_kept_cache_reads_each_companys_people_once_and_answers_as_a_fresh_read(engine: Engine) -> None:
    queries = _world(engine)
    fresh = _best_ids(engine, queries, None)
    assert None not in fresh and len(set(fresh)) == len(queries)
    reads = _people_reads(engine)
    cache = CompanyCache()
    first = _best_ids(engine, queries, cache)
    reads_after_first = len(reads)
    assert reads_after_first >= 1
    again = _best_ids(engine, list(reversed(queries)), cache)
    assert first == fresh and again == list(reversed(fresh))
    assert len(reads) == reads_after_first  # the second call read no company's people again


def test_the_snapshot_starts_over_when_too_old(engine: Engine) -> None:
    queries = _world(engine)
    now_s = [1000.0]
    cache = CompanyCache(max_age_s=60, clock_s=lambda: now_s[0])
    _best_ids(engine, queries, cache)
    late = add_person(engine, NewPerson(full_name="Newly Hired", company="Company 0", domain="company0.test"))
    newcomer = [ContactQuery(full_name="Newly Hired", domain="company0.test")]
    now_s[0] += 59  # within the age: the company's people as read before
    assert _best_ids(engine, newcomer, cache) == [None]
    now_s[0] += 1  # old: read again
    assert _best_ids(engine, newcomer, cache) == [late]


def test_the_snapshot_starts_over_when_too_full(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = _world(engine)
    monkeypatch.setattr(matching, "CACHE_MAX_PEOPLE", PEOPLE_PER_COMPANY * 2)
    cache = CompanyCache()
    _best_ids(engine, queries, cache)
    assert cache.snapshot().people <= PEOPLE_PER_COMPANY * 2  # the last batch's companies only
    reads = _people_reads(engine)
    _best_ids(engine, queries[:1], cache)
    assert reads  # the full snapshot was dropped: company 0 read again


def test_threads_sharing_a_cache_never_see_a_company_half_read(engine: Engine) -> None:
    queries = _world(engine)
    fresh = _best_ids(engine, queries, None)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the cache's fills too
    try:
        for _ in range(5):
            shared = [CompanyCache()] * 6
            with ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(pool.map(lambda c: _best_ids(engine, queries, c), shared))
            assert all(a == fresh for a in answers)
    finally:
        sys.setswitchinterval(old_interval)


def test_an_unknown_person_at_a_cached_company_is_no_match(engine: Engine) -> None:
    queries = _world(engine)
    cache = CompanyCache()
    _best_ids(engine, queries, cache)
    [result] = match_contacts(engine, [ContactQuery(full_name="Nobody Here", domain="company1.test")], cache=cache)
    assert result.outcome is MatchOutcome.NO_MATCH


def test_a_worker_keeps_one_cache_per_job_for_its_last_jobs(engine: Engine, db_url: str) -> None:
    services = Services(settings=Settings(_env_file=None, database_url=db_url), engine=engine)
    chunks = ChunkEngine(services.enrichment_jobs)
    first = chunks.company_cache(1)
    assert chunks.company_cache(1) is first  # the job's next chunk shares what its last one read
    for job_id in range(2, MAX_CACHED_JOBS + 1):
        chunks.company_cache(job_id)
    assert chunks.company_cache(1) is first  # used last: kept
    chunks.company_cache(MAX_CACHED_JOBS + 1)  # one job too many: the least recently used (2) goes
    assert list(chunks._company_caches) == [*range(3, MAX_CACHED_JOBS + 1), 1, MAX_CACHED_JOBS + 1]
