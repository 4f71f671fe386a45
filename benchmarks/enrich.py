"""CSV enrichment throughput and memory: a CSV of people (30% duplicate rows) enriched with --email
--mobile through a waterfall of three loopback HTTP providers (Hunter email-finder v2 shape; each
answers after `--latency-ms` and accepts `--rate` requests/second, enforced server-side with 429), and
a one-by-one baseline (one worker) in the same run.

    .venv/bin/python -m benchmarks.enrich                                    # 100k rows, SQLite
    .venv/bin/python -m benchmarks.enrich --db postgresql                    # the same on PostgreSQL
    .venv/bin/python -m benchmarks.enrich --rows 5000 --baseline-rows 300 --memory-rows 0   # shorter

What the vendors return (deterministic per vendor and person): p1 and p2 know 50% of people, p3 60%.
A hit carries an email (the vendor's "valid" claim, 1 in 10 on a catch-all domain) and, for 1 in 3
hits, a libphonenumber-valid mobile (GB/DE/FR/ES/IT ranges), for another 1 in 6 a valid office
line. By our rules a vendor's email is a claim, not a verification: it comes back `unverified` (or
`accept_all`) and is FREE; validation is off in this waterfall, so every email request walks all
three providers. Mobiles are what is charged: the plan's mobile price, once per person with a mobile.
The credits charged are checked against the ledger (the wallet's drop equals the sum charged).

The rate-limit lower bound: provider i accepted n_i requests and admits `rate` per second, so no
schedule can finish before n_i / rate seconds; the bound is the max over providers (each person
costs one request per provider it reaches: a lookup's email and phone halves share one call). The
ratio is run time / bound (1.0 would be perfect).

Each measured run is a child process (peak memory = its ru_maxrss; about 78 MB of it is the imports)
on a fresh database seeded, by another child beforehand, with the demo world sized to the distinct
people: a SQLite file, or with
`--db postgresql` a scratch database on postgresql://postgres@127.0.0.1:5432 that is dropped after.
The vendors run in this (parent) process so they do not compete with the job for its interpreter.
`--memory-rows N` (default 1,000,000) also enriches an N-row file with the contributor database as
the only source (fast, local) and reports that child's peak memory. The 1-minute load average is
printed at the start and end of each run: the machine is shared.

CPU per person depends on the machine (the same code measured 2.2 to 6.5 ms on the machines of
different sessions), so an aim stated against "today's" code is measured against that code in the
same session: `--reference COMMIT` first runs the in-process job of COMMIT (checked out in a temporary
git worktree, run by its own benchmark with the same file size, database and vendors) and then prints
each run's CPU per distinct person as a ratio to the reference's (`cpu_ratio_to_reference`).

    .venv/bin/python -m benchmarks.enrich --db postgresql --rows 30000 --baseline-rows 0 --memory-rows 0 \
        --reference e85a489 --worker-processes 1
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import io
import json
import multiprocessing
import os
import pstats
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import parse_qs, urlsplit

if __package__ in (None, ""):  # `python benchmarks/enrich.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROVIDERS = ("p1", "p2", "p3")
HIT_SHARES = (0.5, 0.5, 0.6)
PG_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
PG_ADMIN_DB = "test"


# ---- loopback providers (in the parent process) ---------------------------------------------------


def _phone_pools() -> tuple[list[str], list[str]]:
    """Valid mobile and fixed-line numbers (libphonenumber's example numbers, last digits varied)."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    pools: dict[int, list[str]] = {PhoneNumberType.MOBILE: [], PhoneNumberType.FIXED_LINE: []}
    for region in ("GB", "DE", "FR", "ES", "IT"):
        for kind, pool in pools.items():
            example = phonenumbers.example_number_for_type(region, kind)
            digits = str(example.national_number)
            for tail in range(200):
                candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-3]}{tail:03d}")
                if phonenumbers.is_valid_number(candidate) and phonenumbers.number_type(candidate) == kind:
                    pool.append(phonenumbers.format_number(candidate, PhoneNumberFormat.E164))
    return pools[PhoneNumberType.MOBILE], pools[PhoneNumberType.FIXED_LINE]


class _Vendor(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(
        self, name: str, latency_s: float, rate_per_s: float, hit_share: float, phones: tuple[list[str], list[str]]
    ) -> None:
        super().__init__(("127.0.0.1", 0), _VendorHandler)
        self.name = name
        self.latency_s = latency_s
        self.rate_per_s = rate_per_s
        self.hit_share = hit_share
        self.mobiles, self.fixed_lines = phones
        self.lock = threading.Lock()
        self.requests = 0
        self.rejected = 0
        self.window: list[float] = []
        self.served_times: list[float] = []  # time.monotonic() of every request served (VendorsProcess)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _VendorHandler(BaseHTTPRequestHandler):
    server: _Vendor
    protocol_version = "HTTP/1.1"  # keep-alive, as real vendor APIs do
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle + the client's delayed ACK
    # would add ~40 ms to every keep-alive answer, latency no real vendor has.
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        vendor = self.server
        now = time.monotonic()
        with vendor.lock:
            vendor.requests += 1
            # Enforce the advertised limit like a vendor would (a sliding one-second window).
            while vendor.window and now - vendor.window[0] >= 1.0:
                vendor.window.pop(0)
            over = len(vendor.window) >= vendor.rate_per_s * 1.05
            if over:
                vendor.rejected += 1
            else:
                vendor.window.append(now)
                vendor.served_times.append(now)
        time.sleep(vendor.latency_s)
        if over:
            self._reply(429, {"errors": [{"id": "too_many_requests"}]}, {"Retry-After": "1"})
            return
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        first, last, domain = params.get("first_name", ""), params.get("last_name", ""), params.get("domain", "")
        digest = hashlib.sha256(f"{vendor.name}|{first}|{last}|{domain}".encode()).digest()
        if digest[0] / 256 >= vendor.hit_share:
            self._reply(404, {"errors": [{"id": "email_not_found", "code": 404}]})
            return
        pick = int.from_bytes(digest[5:9], "big")
        phone = None
        if digest[2] % 6 < 2:  # 1 in 3 hits: a mobile
            phone = vendor.mobiles[pick % len(vendor.mobiles)]
        elif digest[2] % 6 == 2:  # 1 in 6: an office line
            phone = vendor.fixed_lines[pick % len(vendor.fixed_lines)]
        email = f"{first}.{last}@{domain}".lower().replace(" ", "")
        body = {
            "data": {
                "first_name": first, "last_name": last, "email": email, "score": 60 + digest[3] % 40,
                "domain": domain, "accept_all": digest[4] % 10 == 0, "position": None, "twitter": None,
                "linkedin_url": None, "phone_number": phone, "company": None, "sources": [],
                "verification": {"date": "2026-11-01", "status": "valid"},
            },
            "meta": {"params": {"domain": domain}},
        }
        self._reply(200, body)

    def _reply(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def _start_vendors(latency_s: float, rate_per_s: float, phones: tuple[list[str], list[str]]) -> list[_Vendor]:
    vendors = []
    for name, share in zip(PROVIDERS, HIT_SHARES, strict=True):
        vendor = _Vendor(name, latency_s, rate_per_s, share, phones)
        threading.Thread(target=vendor.serve_forever, daemon=True).start()
        vendors.append(vendor)
    return vendors


@dataclass(frozen=True)
class VendorCounts:
    name: str
    requests: int
    rejected: int  # answered 429
    served_at: tuple[float, float] | None  # time.monotonic() of the first and last request served
    per_second: tuple[int, ...]  # requests served in each second since the reset

    def sparkline(self, rate_per_s: float) -> str:
        """Requests served per second, drawn against the rate (full block: the whole rate)."""
        bars = " ▁▂▃▄▅▆▇█"
        return "".join(bars[min(8, round(8 * n / rate_per_s))] for n in self.per_second)


class VendorsProcess:
    """The loopback vendors in a process of their own, as real vendors are: in the benchmark's
    process they shared its interpreter lock with whatever else it plays (the Sheets stand-in
    serving a 70,000-cell read), and every vendor answer waited while that ran."""

    def __init__(self, latency_s: float, rate_per_s: float, phones: tuple[list[str], list[str]]) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_vendors, args=(child, latency_s, rate_per_s, phones), daemon=True
        )
        self._process.start()
        self.urls: list[str] = self._conn.recv()

    def _ask(self, what: str):
        self._conn.send(what)
        return self._conn.recv()

    def reset(self) -> None:
        """Count from now."""
        self._ask("reset")

    def counts(self) -> list[VendorCounts]:
        return self._ask("counts")

    def close(self) -> None:
        self._ask("stop")
        self._process.join(timeout=10)


def _per_second(times: list[float], since: float) -> tuple[int, ...]:
    seconds = [int(t - since) for t in times]
    out = [0] * (max(seconds) + 1 if seconds else 0)
    for second in seconds:
        out[second] += 1
    return tuple(out)


def _counts(vendor: _Vendor, since: float) -> VendorCounts:
    times = list(vendor.served_times)
    served_at = (times[0], times[-1]) if times else None
    return VendorCounts(vendor.name, vendor.requests, vendor.rejected, served_at, _per_second(times, since))


def _serve_vendors(conn, latency_s: float, rate_per_s: float, phones: tuple[list[str], list[str]]) -> None:
    vendors = _start_vendors(latency_s, rate_per_s, phones)
    conn.send([v.url for v in vendors])
    since = time.monotonic()
    while (what := conn.recv()) != "stop":
        if what == "reset":
            since = time.monotonic()
            for v in vendors:
                with v.lock:
                    v.requests = v.rejected = 0
                    v.served_times = []
            conn.send(None)
        else:
            conn.send([_counts(v, since) for v in vendors])
    for v in vendors:
        v.shutdown()
        v.server_close()
    conn.send(None)


# ---- one measured run, in a child process -------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    rows: int
    workers: int
    vendor_urls: tuple[str, ...]  # empty: the contributor database only (the memory run)
    rate_per_s: float
    workdir: str
    db_url: str
    profile: bool = False


@dataclass(frozen=True)
class ChildResult:
    rows: int
    seconds: float
    peak_rss_mb: float
    peak_rss_mb_by_rows: list[tuple[int, float]]
    credits_charged: int  # the job's summary
    ledger_spent_credits: int  # the wallet's drop over the run
    charged_requests: int  # data requests charged (mobiles found)
    matched: int
    mobiles_found: int
    email_statuses: dict[str, int]
    sql_statements: int
    cpu_s: float  # the child's CPU time (user + system) over the run: ~seconds means one core's worth
    load_avg_start: float
    load_avg_end: float
    profile: str


@dataclass(frozen=True)
class RunResult:
    label: str
    db: str
    rows: int
    distinct_people: int
    workers: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    peak_rss_mb_by_rows: list[tuple[int, float]]
    credits_charged: int
    ledger_spent_credits: int
    mobiles_found: int
    email_statuses: dict[str, int]
    provider_requests: dict[str, int]
    provider_rejected_429: int
    bound_s: float
    ratio_to_bound: float
    sql_statements_per_row: float
    cpu_s: float
    load_avg_start: float
    load_avg_end: float


def _write_csv(path: Path, people: list[tuple[str, str, str, str]], rows: int, seed: int = 11) -> int:
    """`rows` rows over the given people: 70% first sightings, 30% repeats of earlier rows."""
    rng = random.Random(seed)
    distinct = round(rows * 0.7)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["First Name", "Last Name", "Company", "Website", "Deal Value"])
        for i in range(rows):
            p = people[i % len(people)] if i < distinct else people[rng.randrange(min(distinct, len(people)))]
            out.writerow([p[0], p[1], p[2], f"https://www.{p[3]}/", str(rng.randrange(1000, 90000))])
    return min(distinct, len(people))


def _prepare(spec: RunSpec, pipe) -> None:  # pragma: no cover - runs in a child
    """The database (migrated, seeded with the demo world, the team and its credits) and the CSV, in a
    process of its own so that the measured run's peak memory is the enrichment's, not the seeding's."""
    from sqlalchemy import select

    from core.accounts import Accounts
    from demo.world import seed_world
    from storage.db import make_engine, read_transaction
    from storage.migrate import upgrade
    from storage.models import Company, Person

    upgrade(spec.db_url)
    engine = make_engine(spec.db_url)
    distinct_wanted = max(1, round(spec.rows * 0.7)) if spec.vendor_urls else 20_000
    seed_world(engine, company_count=2_000, people=distinct_wanted)
    with read_transaction(engine) as conn:
        people = [
            (r.first_name, r.last_name, r.name, r.domain)
            for r in conn.execute(
                select(Person.first_name, Person.last_name, Company.name, Company.domain)
                .join(Company, Company.id == Person.company_id)
                .order_by(Person.id)
            )
        ]
    distinct = _write_csv(Path(spec.workdir) / "in.csv", people, spec.rows)
    accounts = Accounts(engine)
    accounts.create_team("bench", plan="professional")
    accounts.add_member("bench", "rep@bench.example")
    accounts.ledger.grant(accounts.team("bench").id, 10_000_000, key="bench-topup", expires_at=None)
    engine.dispose()
    pipe.send(distinct)


def _child(spec: RunSpec, pipe) -> None:  # pragma: no cover - runs in the child
    from decimal import Decimal

    from sqlalchemy import event, func, select

    from cli.malloc_arenas import limit_malloc_arenas
    from core.accounts import Accounts
    from core.data_requests import DataRequests
    from core.enrichment.csv_enrich import CsvEnrichment, CsvEnrichRequest
    from core.enrichment.jobs import EnrichmentJobs
    from core.sources.database import DatabaseSource
    from core.sources.http_provider import HttpProviderSource, ProviderConfig
    from core.waterfall import Waterfalls
    from storage.db import make_engine, read_transaction
    from storage.models import DataRequest

    limit_malloc_arenas()  # as `tributary` does at start
    work = Path(spec.workdir)
    inp = work / "in.csv"
    engine = make_engine(spec.db_url, pool_size=spec.workers + 4)
    providers = bool(spec.vendor_urls)
    accounts = Accounts(engine)
    team_id = accounts.team("bench").id
    sources: dict = {"database": DatabaseSource(engine)}
    for name, url in zip(PROVIDERS, spec.vendor_urls, strict=False):
        sources[name] = HttpProviderSource(
            ProviderConfig(
                name=name,
                base_url=url,
                api_key="bench",
                cost_per_hit_usd=Decimal("0.01"),
                rate_limit_per_s=spec.rate_per_s,
                # A vendor that counts a sliding second admits no burst on top of its rate.
                burst=max(1, int(spec.rate_per_s // 40)),
                timeout_s=10.0,
                backoff_initial_s=0.2,
            )
        )
    waterfalls = Waterfalls(engine, sources, accounts=accounts)
    if providers:
        waterfalls.set("bench", email_sources=list(PROVIDERS), phone_sources=list(PROVIDERS), validate_email=False)
    data_requests = DataRequests(engine, DatabaseSource(engine), accounts=accounts, sources=waterfalls.for_team)
    jobs = EnrichmentJobs(engine, data_requests, accounts=accounts, workers=spec.workers)
    svc = CsvEnrichment(jobs)
    request = CsvEnrichRequest(inp, work / "out.csv", "bench", "rep@bench.example", True, True)
    plan = svc.plan(request)
    job, _ = svc.start_or_resume(request, plan)
    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        statements[0] += 1

    before = accounts.ledger.balance(team_id).total_credits
    load_start = os.getloadavg()[0]
    profiler = cProfile.Profile() if spec.profile else None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    rss_samples: list[tuple[int, float]] = []
    every = max(1, spec.rows // 10)

    def on_progress(progress) -> None:
        # Peak memory so far, about every tenth of the file: flat means it does not grow with rows.
        if not rss_samples or progress.done_rows - rss_samples[-1][0] >= every:
            rss_samples.append((progress.done_rows, _peak_rss_mb()))

    summary = svc.run(request, plan, job, on_progress=on_progress)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_start
    load_end = os.getloadavg()[0]
    spent = before - accounts.ledger.balance(team_id).total_credits
    with read_transaction(engine) as conn:
        charged_requests = conn.execute(
            select(func.count()).where(DataRequest.team_id == team_id, DataRequest.credits_charged > 0)
        ).scalar_one()
    profile_text = ""
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(30)
        profile_text = buf.getvalue()
    pipe.send(
        ChildResult(
            rows=summary.rows,
            seconds=round(seconds, 2),
            peak_rss_mb=_peak_rss_mb(),
            peak_rss_mb_by_rows=rss_samples,
            credits_charged=summary.credits_charged,
            ledger_spent_credits=spent,
            charged_requests=charged_requests,
            matched=summary.matched,
            mobiles_found=summary.mobiles_found,
            email_statuses=dict(summary.email_statuses),
            sql_statements=statements[0],
            cpu_s=round(cpu_s, 1),
            load_avg_start=round(load_start, 2),
            load_avg_end=round(load_end, 2),
            profile=profile_text,
        )
    )
    engine.dispose()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _in_child(target, spec: RunSpec):
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(spec, child))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        proc.join()
        raise SystemExit(f"the measured run died (exit code {proc.exitcode})") from None
    proc.join()
    return result


def _scratch_postgres(label: str) -> tuple[str, str]:
    import psycopg

    name = f"tributary_bench_enrich_{os.getpid()}_{label}"
    with psycopg.connect(f"{PG_SERVER_URL}/{PG_ADMIN_DB}", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{PG_SERVER_URL}/{name}"


def _drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER_URL}/{PG_ADMIN_DB}", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(
    label: str, rows: int, workers: int, *, providers: bool, args: argparse.Namespace, tmp: Path, phones
) -> RunResult:
    workdir = tmp / label
    workdir.mkdir()
    vendors = _start_vendors(args.latency_ms / 1000, args.rate, phones) if providers else []
    pg_name = None
    if args.db == "postgresql":
        pg_name, db_url = _scratch_postgres(label.replace("-", "_"))
    else:
        db_url = f"sqlite:///{workdir / 'bench.db'}"
    try:
        spec = RunSpec(rows, workers, tuple(v.url for v in vendors), args.rate, str(workdir), db_url, args.profile)
        distinct = _in_child(_prepare, spec)
        child = _in_child(_child, spec)
    finally:
        for vendor in vendors:
            vendor.shutdown()
            vendor.server_close()
        if pg_name:
            _drop_postgres(pg_name)
    if child.profile:
        print(f"--- profile of {label} (tottime) ---\n{child.profile}", flush=True)
    requests = {v.name: v.requests for v in vendors}
    accepted = [v.requests - v.rejected for v in vendors]
    bound = max((n / args.rate for n in accepted), default=0.0)
    return RunResult(
        label=label,
        db=args.db,
        rows=child.rows,
        distinct_people=distinct,
        workers=workers,
        seconds=child.seconds,
        rows_per_s=round(child.rows / child.seconds, 1),
        peak_rss_mb=child.peak_rss_mb,
        peak_rss_mb_by_rows=child.peak_rss_mb_by_rows,
        credits_charged=child.credits_charged,
        ledger_spent_credits=child.ledger_spent_credits,
        mobiles_found=child.mobiles_found,
        email_statuses=child.email_statuses,
        provider_requests=requests,
        provider_rejected_429=sum(v.rejected for v in vendors),
        bound_s=round(bound, 2),
        ratio_to_bound=round(child.seconds / bound, 3) if bound else 0.0,
        sql_statements_per_row=round(child.sql_statements / max(1, child.rows), 1),
        cpu_s=child.cpu_s,
        load_avg_start=child.load_avg_start,
        load_avg_end=child.load_avg_end,
    )


@dataclass(frozen=True)
class WorkersResult:
    label: str
    rows: int
    distinct_people: int
    worker_processes: int
    seconds: float
    rows_per_s: float
    bound_s: float
    ratio_to_bound: float
    provider_requests: dict[str, int]
    provider_rejected_429: int
    credits_charged: int
    ledger_spent_credits: int
    worker_cpu_s: float
    cli_cpu_s: float  # submitting (parsing, storing the input), waiting, downloading
    cpu_ms_per_person: float  # the workers' CPU per distinct person (start-up and exit included)
    job_cpu_s: float  # the workers' CPU from the submit to the end of `--wait` (started, imported, idle before)
    job_cpu_ms_per_person: float  # job_cpu_s per distinct person: the figure the aim is about
    load_avg_start: float
    load_avg_end: float


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process and its waited-for children (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in parts[11:15]) / os.sysconf("SC_CLK_TCK")


def _worker_pids(workers, *, spy: bool) -> list[int]:
    """The worker processes (under py-spy, its child: py-spy's own CPU is not the worker's)."""
    if not spy:
        return [w.pid for w in workers]
    pids = []
    for w in workers:
        with open(f"/proc/{w.pid}/task/{w.pid}/children") as f:
            pids.extend(int(p) for p in f.read().split())
    return pids


def _workers_cpu_s(workers, *, spy: bool) -> float:
    return sum(_proc_cpu_s(pid) for pid in _worker_pids(workers, spy=spy))


def _wait_started(workers, *, spy: bool, idle_cpu_s: float = 0.05) -> None:
    """Until every worker has imported everything and sits idle (its CPU stops growing), so the job's
    CPU is measured without the start-up."""
    tick = threading.Event()
    while True:
        pids = _worker_pids(workers, spy=spy)
        if len(pids) == len(workers):
            before = sum(_proc_cpu_s(p) for p in pids)
            tick.wait(1.0)
            if sum(_proc_cpu_s(p) for p in pids) - before < idle_cpu_s * len(pids):
                return
        else:
            tick.wait(0.2)


def measure_on_workers(n: int, args: argparse.Namespace, tmp: Path, phones) -> WorkersResult:
    """The same file and vendors, run by `tributary enrich --on-workers --wait` and N `tributary
    worker` processes on PostgreSQL + Redis. Each worker's provider rate limit is rate / N (the
    limiter is per process), so together they ask the vendors for what a single process would."""
    import uuid

    label = f"workers-{n}"
    workdir = tmp / label
    workdir.mkdir()
    vendors = _start_vendors(args.latency_ms / 1000, args.rate, phones)
    pg_name, db_url = _scratch_postgres(label.replace("-", "_"))
    workers: list[subprocess.Popen] = []
    try:
        spec = RunSpec(args.rows, args.workers, tuple(v.url for v in vendors), args.rate, str(workdir), db_url)
        distinct = _in_child(_prepare, spec)
        providers = [
            {"name": name, "base_url": url, "api_key": "bench", "cost_per_hit_usd": "0.01",
             "rate_limit_per_s": args.rate / n, "timeout_s": 10.0,
             "burst": max(1, int(args.rate / n // 40))}  # as in-process: no burst a sliding second refuses
            for name, url in zip(PROVIDERS, spec.vendor_urls, strict=True)
        ]
        env = {
            **os.environ,
            "TRIBUTARY_DATABASE_URL": db_url,
            "TRIBUTARY_DEVELOPMENT": "true",  # throwaway workers: no production keys to check
            "TRIBUTARY_REDIS_URL": args.redis,
            "TRIBUTARY_HUEY_NAME": f"bench-{uuid.uuid4().hex[:8]}",
            "TRIBUTARY_PROVIDERS": json.dumps(providers),
            "TRIBUTARY_ENRICH_WORKERS": str(args.workers),
            "TRIBUTARY_ENRICH_TEAM_CHUNKS": str(2 * n),
        }
        cli = [sys.executable, "-m", "cli.main"]
        subprocess.run(
            [*cli, "waterfall", "set", "bench", "--email", ",".join(PROVIDERS), "--phone", ",".join(PROVIDERS),
             "--no-validate"], env=env, check=True, capture_output=True,
        )
        for vendor in vendors:  # the set-up asked nothing, but count from here
            vendor.requests = vendor.rejected = 0
        spy = [] if not args.py_spy else [
            str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw",
            "--rate", "100" if args.py_spy_idle else "200",
            *(["--idle", "--threads"] if args.py_spy_idle else [] if args.py_spy_on_cpu else ["--gil"]),
            "--nonblocking", "-o",
        ]
        for i in range(n):
            prefix = [*spy, str(Path(args.py_spy) / f"{label}-{i}.txt"), "--"] if spy else []
            workers.append(
                subprocess.Popen([*prefix, *cli, "worker", "--no-periodic", "--threads", "2"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        _wait_started(workers, spy=bool(spy))
        from core.accounts import Accounts
        from storage.db import make_engine

        engine = make_engine(db_url)
        accounts = Accounts(engine)
        team_id = accounts.team("bench").id
        before = accounts.ledger.balance(team_id).total_credits
        load_start = os.getloadavg()[0]
        cpu0 = _children_cpu_s()
        warm0 = _workers_cpu_s(workers, spy=bool(spy))
        started = time.perf_counter()
        subprocess.run(
            [*cli, "enrich", str(workdir / "in.csv"), "-o", str(workdir / "out.csv"), "--team", "bench",
             "--member", "rep@bench.example", "--email", "--mobile", "--on-workers", "--wait"],
            env=env, check=True, capture_output=True,
        )
        seconds = time.perf_counter() - started
        warm1 = _workers_cpu_s(workers, spy=bool(spy))
        cpu1 = _children_cpu_s()
        load_end = os.getloadavg()[0]
        for pid in _worker_pids(workers, spy=bool(spy)):
            os.kill(pid, signal.SIGTERM)  # under py-spy: the worker; py-spy writes its file when it exits
        for w in workers:
            w.wait()
        cpu2 = _children_cpu_s()
        with (workdir / "out.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        credits = sum(int(r["tributary_credits_charged"] or 0) for r in rows)
        spent = before - accounts.ledger.balance(team_id).total_credits
        engine.dispose()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        for vendor in vendors:
            vendor.shutdown()
            vendor.server_close()
        _drop_postgres(pg_name)
    accepted = [v.requests - v.rejected for v in vendors]
    bound = max((k / args.rate for k in accepted), default=0.0)
    worker_cpu = cpu2 - cpu1
    return WorkersResult(
        label=label, rows=len(rows), distinct_people=distinct, worker_processes=n, seconds=round(seconds, 2),
        rows_per_s=round(len(rows) / seconds, 1), bound_s=round(bound, 2),
        ratio_to_bound=round(seconds / bound, 3) if bound else 0.0,
        provider_requests={v.name: v.requests for v in vendors},
        provider_rejected_429=sum(v.rejected for v in vendors), credits_charged=credits,
        ledger_spent_credits=int(spent), worker_cpu_s=round(worker_cpu, 1), cli_cpu_s=round(cpu1 - cpu0, 1),
        cpu_ms_per_person=round(1000 * worker_cpu / max(1, distinct), 2),
        job_cpu_s=round(warm1 - warm0, 1),
        job_cpu_ms_per_person=round(1000 * (warm1 - warm0) / max(1, distinct), 2),
        load_avg_start=round(load_start, 2), load_avg_end=round(load_end, 2),
    )


@dataclass(frozen=True)
class ReferenceResult:
    commit: str
    rows: int
    distinct_people: int
    seconds: float
    ratio_to_bound: float
    cpu_s: float  # the reference child's CPU over its job's run (svc.run: reading, lookups, writing), as "pool"
    cpu_ms_per_person: float


def measure_reference(commit: str, args: argparse.Namespace) -> ReferenceResult:
    """The in-process job of `commit`, run by that commit's own benchmark (same rows, database, vendors)."""
    root = Path(__file__).resolve().parent.parent
    with TemporaryDirectory() as tmp:
        tree = Path(tmp) / "reference"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=root, check=True,
                       capture_output=True)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.enrich", "--db", args.db, "--rows", str(args.rows),
                 "--workers", str(args.workers), "--baseline-rows", "0", "--memory-rows", "0",
                 "--latency-ms", str(args.latency_ms), "--rate", str(args.rate)],
                cwd=tree, check=False, capture_output=True, text=True,  # its own code first on sys.path
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)
    lines = [out for out in done.stdout.splitlines() if out.startswith("pool: ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the reference run of {commit} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    pool = json.loads(lines[-1].removeprefix("pool: "))
    people = pool["distinct_people"]
    return ReferenceResult(commit, pool["rows"], people, pool["seconds"], pool["ratio_to_bound"], pool["cpu_s"],
                           round(1000 * pool["cpu_s"] / people, 2))


def _against_reference(reference: ReferenceResult | None, label: str, cpu_ms_per_person: float) -> None:
    if reference is not None:
        ratio = cpu_ms_per_person / reference.cpu_ms_per_person
        print(f"{label}: cpu_ms_per_person {cpu_ms_per_person:.2f} / reference {reference.cpu_ms_per_person:.2f}"
              f" = cpu_ratio_to_reference {ratio:.3f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/second each provider accepts")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured runs (slows them)")
    parser.add_argument(
        "--worker-processes", type=int, nargs="+", metavar="N",
        help="instead: run the file on N `tributary worker` processes (PostgreSQL + Redis), for each N given",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis for --worker-processes")
    parser.add_argument("--py-spy", metavar="DIR", help="with --worker-processes: py-spy each worker (raw stacks)")
    parser.add_argument(
        "--py-spy-idle", action="store_true",
        help="with --py-spy: sample every thread, waiting ones too (where the wall time goes, not only the CPU)",
    )
    parser.add_argument(
        "--py-spy-on-cpu", action="store_true",
        help="with --py-spy: sample every thread that is on a CPU, holding the GIL or not (native code too)",
    )
    parser.add_argument(
        "--reference", metavar="COMMIT",
        help="first run COMMIT's in-process job (a git worktree) and print each run's CPU per person against it",
    )
    args = parser.parse_args(argv)
    phones = _phone_pools()
    reference = measure_reference(args.reference, args) if args.reference else None
    if reference is not None:
        print(f"reference: {json.dumps(asdict(reference))}", flush=True)
    if args.worker_processes:
        with TemporaryDirectory() as tmp:
            for n in args.worker_processes:
                result = measure_on_workers(n, args, Path(tmp), phones)
                print(f"{result.label}: {json.dumps(asdict(result))}", flush=True)
                # The reference's figure is its job's run (reading and writing the file included); the
                # workers' job CPU leaves out the CLI, which parsed, stored and wrote the file: both shown.
                _against_reference(reference, f"{result.label} (workers' job)", result.job_cpu_ms_per_person)
                with_cli = 1000 * (result.job_cpu_s + result.cli_cpu_s) / result.distinct_people
                _against_reference(reference, f"{result.label} (workers' job + the whole CLI)", with_cli)
                if result.credits_charged != result.ledger_spent_credits:
                    print(f"!! {result.label}: the rows report {result.credits_charged} credits, the ledger "
                          f"took {result.ledger_spent_credits}", flush=True)
        return
    results: dict[str, RunResult] = {}
    with TemporaryDirectory() as tmp:
        runs = [("pool", args.rows, args.workers, True), ("one-by-one", args.baseline_rows, 1, True)]
        runs.append(("memory", args.memory_rows, args.workers, False))
        for label, rows, workers, providers in runs:
            if rows <= 0:
                continue
            result = measure(label, rows, workers, providers=providers, args=args, tmp=Path(tmp), phones=phones)
            results[label] = result
            print(f"{label}: {json.dumps(asdict(result))}", flush=True)
            if label == "pool":
                _against_reference(reference, label, 1000 * result.cpu_s / result.distinct_people)
            if result.credits_charged != result.ledger_spent_credits:
                print(f"!! {label}: the job reports {result.credits_charged} credits, the ledger lost "
                      f"{result.ledger_spent_credits}", flush=True)
    pool, base = results.get("pool"), results.get("one-by-one")
    if pool and base:
        per_row = base.seconds / base.rows
        print(
            f"one-by-one extrapolated to {pool.rows} rows: {per_row * pool.rows:.0f} s "
            f"(pool: {pool.seconds:.0f} s, {per_row * pool.rows / pool.seconds:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
