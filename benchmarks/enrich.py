"""CSV enrichment throughput and memory: a CSV of people (30% duplicate rows) with --email --mobile
through a waterfall of three loopback HTTP providers (Hunter email-finder v2 shape; each answers after
`--latency-ms` and accepts `--rate` requests/second), and a one-by-one baseline in the same run.

    .venv/bin/python -m benchmarks.enrich                          # 100,000 rows, baseline 1,000 rows
    .venv/bin/python -m benchmarks.enrich --rows 10000 --baseline-rows 500 --memory-rows 0   # shorter

Each run is a child process (peak memory = its ru_maxrss) on a fresh SQLite database seeded with the
demo world (core/demo_world.py) sized to the distinct people. The rate-limit lower bound is
max over providers of (requests that provider received / its rate): no schedule can beat it.
Vendor emails are claims ("valid" is not verified by us), so every email lookup walks all three
providers; a valid mobile stops the phone waterfall at the provider that has it.

`--memory-rows N` also enriches an N-row file (default 1,000,000) with the contributor database as
the only source (fast, local) and reports that child's peak memory.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import random
import resource
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


# ---- loopback providers --------------------------------------------------------------------------


class _Vendor(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, name: str, latency_s: float, rate_per_s: float, hit_share: float) -> None:
        super().__init__(("127.0.0.1", 0), _VendorHandler)
        self.name = name
        self.latency_s = latency_s
        self.rate_per_s = rate_per_s
        self.hit_share = hit_share
        self.lock = threading.Lock()
        self.requests = 0
        self.rejected = 0
        self.window: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _VendorHandler(BaseHTTPRequestHandler):
    server: _Vendor

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        vendor = self.server
        now = time.monotonic()
        with vendor.lock:
            vendor.requests += 1
            # Enforce the advertised limit like a vendor would (a sliding one-second window).
            vendor.window = [t for t in vendor.window if now - t < 1.0]
            over = len(vendor.window) >= vendor.rate_per_s * 1.05
            if over:
                vendor.rejected += 1
            else:
                vendor.window.append(now)
        time.sleep(vendor.latency_s)
        if over:
            self._reply(429, {"errors": [{"id": "too_many_requests"}]}, {"Retry-After": "1"})
            return
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        first, last, domain = params.get("first_name", ""), params.get("last_name", ""), params.get("domain", "")
        digest = hashlib.sha256(f"{vendor.name}|{first}|{last}|{domain}".encode()).digest()
        if digest[0] / 255 >= vendor.hit_share:
            self._reply(404, {"errors": [{"id": "email_not_found", "code": 404}]})
            return
        phone = f"+1415555{100 + digest[1] % 100:04d}" if digest[2] % 3 == 0 else None
        email = f"{first}.{last}@{domain}".lower()
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


# ---- one measured run, in a child process -------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    rows: int
    workers: int
    providers: bool  # False: the contributor database only (the memory run)
    latency_s: float
    rate_per_s: float
    workdir: str


@dataclass(frozen=True)
class RunResult:
    rows: int
    distinct_people: int
    workers: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    provider_requests: dict[str, int]
    provider_rejected_429: int
    bound_s: float  # rate-limit lower bound
    ratio_to_bound: float
    credits_charged: int
    matched: int


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


def _child(spec: RunSpec, pipe) -> None:  # pragma: no cover - runs in the child
    from sqlalchemy import select

    from core.accounts import Accounts
    from core.data_requests import DataRequests
    from core.demo_world import seed_world
    from core.enrichment.csv_enrich import CsvEnrichment, CsvEnrichRequest
    from core.enrichment.jobs import EnrichmentJobs
    from core.sources.database import DatabaseSource
    from core.sources.http_provider import HttpProviderSource, ProviderConfig
    from core.waterfall import Waterfalls
    from storage.db import make_engine, read_transaction
    from storage.migrate import upgrade
    from storage.models import Company, Person

    work = Path(spec.workdir)
    url = f"sqlite:///{work / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url, pool_size=spec.workers + 4)
    distinct_wanted = max(1, round(spec.rows * 0.7)) if spec.providers else 20_000
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
    inp = work / "in.csv"
    distinct = _write_csv(inp, people, spec.rows)
    del people
    accounts = Accounts(engine)
    accounts.create_team("bench", plan="professional")
    accounts.add_member("bench", "rep@bench.example")
    accounts.ledger.grant(accounts.team("bench").id, 10_000_000, key="bench-topup", expires_at=None)
    vendors: list[_Vendor] = []
    sources: dict = {"database": DatabaseSource(engine)}
    if spec.providers:
        for i, name in enumerate(PROVIDERS):
            vendor = _Vendor(name, spec.latency_s, spec.rate_per_s, hit_share=(0.5, 0.5, 0.6)[i])
            threading.Thread(target=vendor.serve_forever, daemon=True).start()
            vendors.append(vendor)
            sources[name] = HttpProviderSource(
                ProviderConfig(name=name, base_url=vendor.url, api_key="bench", rate_limit_per_s=spec.rate_per_s,
                               timeout_s=10.0, backoff_initial_s=0.2)
            )
    waterfalls = Waterfalls(engine, sources, accounts=accounts)
    if spec.providers:
        waterfalls.set("bench", email_sources=list(PROVIDERS), phone_sources=list(PROVIDERS))
    data_requests = DataRequests(engine, DatabaseSource(engine), accounts=accounts, sources=waterfalls.for_team)
    jobs = EnrichmentJobs(engine, data_requests, accounts=accounts, workers=spec.workers)
    svc = CsvEnrichment(jobs)
    request = CsvEnrichRequest(inp, work / "out.csv", "bench", "rep@bench.example", True, True)
    plan = svc.plan(request)
    job, _ = svc.start_or_resume(request, plan)
    started = time.perf_counter()
    summary = svc.run(request, plan, job)
    seconds = time.perf_counter() - started
    requests = {v.name: v.requests for v in vendors}
    bound = max((n / spec.rate_per_s for n in requests.values()), default=0.0)
    pipe.send(
        RunResult(
            rows=summary.rows,
            distinct_people=distinct,
            workers=spec.workers,
            seconds=round(seconds, 2),
            rows_per_s=round(summary.rows / seconds, 1),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            provider_requests=requests,
            provider_rejected_429=sum(v.rejected for v in vendors),
            bound_s=round(bound, 2),
            ratio_to_bound=round(seconds / bound, 3) if bound else 0.0,
            credits_charged=summary.credits_charged,
            matched=summary.matched,
        )
    )


def measure(spec: RunSpec) -> RunResult:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(spec, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/second each provider accepts")
    args = parser.parse_args(argv)
    results = {}
    with TemporaryDirectory() as tmp:
        runs = [("pool", args.rows, args.workers, True), ("one-by-one", args.baseline_rows, 1, True)]
        if args.memory_rows:
            runs.append(("memory (database source)", args.memory_rows, args.workers, False))
        for label, rows, workers, providers in runs:
            if rows <= 0:
                continue
            workdir = Path(tmp) / label.split()[0]
            workdir.mkdir()
            spec = RunSpec(rows, workers, providers, args.latency_ms / 1000, args.rate, str(workdir))
            result = measure(spec)
            results[label] = result
            print(f"{label}: {json.dumps(asdict(result))}", flush=True)
    pool, base = results.get("pool"), results.get("one-by-one")
    if pool and base:
        per_row = base.seconds / base.rows
        print(
            f"one-by-one extrapolated to {pool.rows} rows: {per_row * pool.rows:.0f} s "
            f"(pool: {pool.seconds:.0f} s, {per_row * pool.rows / pool.seconds:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
