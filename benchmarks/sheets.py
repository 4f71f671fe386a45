"""The Sheets add-on end to end: a 10,000-row sheet (30% duplicate rows, names at companies of the
demo world) enriched with email and mobile from the sidebar's calls, through a waterfall of three
loopback providers (benchmarks/enrich.py's, each admitting `--rate` requests/second, 429 past it),
with the loopback Sheets API (tests/google/sheets_server.py) enforcing Google's 60 reads and 60
writes per user and minute. This process runs the app (Flask test client), the huey consumer
(`--threads`) and the Sheets server; the vendors run in a process of their own, as real ones do
(sharing this interpreter, their answers waited whenever the Sheets stand-in served a large read).

    .venv/bin/python -m benchmarks.sheets                       # 10,000 rows, SQLite, the job in this process
    .venv/bin/python -m benchmarks.sheets --rows 2000           # shorter
    .venv/bin/python -m benchmarks.sheets --worker-processes 1 2  # production's shape (below)

With `--worker-processes N` the job runs where production runs it: on N `tributary worker` processes
on PostgreSQL + Redis (a scratch database, dropped after), while this process plays the web app and
Google (each worker's vendor limit is rate / N: the limiter is per process). `--py-spy DIR` records
each worker's stacks (raw, the GIL holder's) for `py-spy`'s tools.

Reported: the Sheets API calls the job made (aim: at most 25 writes and 10 reads per 10,000 rows),
and the wall time from the start call to the job's end against the larger of two lower bounds
measured in the same run: the vendors' (provider i answered n_i requests at `rate` per second: no
schedule finishes before max n_i / rate) and the Sheets quota's (W writes at 60 per minute: 60 s for
every 60 beyond the first 60). The ratio is wall / bound (aim: within 1.25). Also reported: the CPU
every process on the machine used over the wall time (a machine busy elsewhere slows the job).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/sheets.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.enrich import PROVIDERS, VendorsProcess, _phone_pools  # noqa: E402

HEADER = ["First Name", "Last Name", "Company", "Website", "Notes"]
QUOTA_PER_MINUTE = 60
# The verifier is off in this waterfall; should anything reach it, it asks nothing but loopback.
_NO_VERIFIER = {"verify_dns_nameservers": ["127.0.0.1"], "verify_dns_port": 9, "verify_smtp_port": 9}


def _sheet_rows(people: list[tuple[str, str, str, str]], rows: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    distinct = max(1, round(rows * 0.7))
    pool = people[:distinct]
    out = [[f, lname, company, f"https://{domain}/", ""] for f, lname, company, domain in pool]
    out += [list(out[rng.randrange(len(out))]) for _ in range(rows - len(out))]
    rng.shuffle(out)
    return out[:rows]


def _world(
    db_url: str, rows: int, args: argparse.Namespace, vendors, sheets_url: str, certs_url: str, tmp: str, **settings
):
    from sqlalchemy import select

    from core.secrets import generate_key
    from core.services import Services
    from core.settings import Settings
    from demo.world import seed_world
    from storage.db import make_engine, read_transaction
    from storage.migrate import upgrade
    from storage.models import Company, Person
    from tests.google.identity import TEST_CLIENT_ID

    upgrade(db_url)
    engine = make_engine(db_url)
    seed_world(engine, company_count=2_000, people=max(1, round(rows * 0.7)))
    with read_transaction(engine) as conn:
        people = [
            (r.first_name, r.last_name, r.name, r.domain)
            for r in conn.execute(
                select(Person.first_name, Person.last_name, Company.name, Company.domain)
                .join(Company, Company.id == Person.company_id).order_by(Person.id)
            )
        ]
    engine.dispose()
    # A burst of a fortieth of a second's rate, as benchmarks/enrich.py: the vendors count a sliding
    # second, so the default burst (a second's worth on top of the rate) would be answered with 429s.
    providers = [{"name": name, "base_url": url, "api_key": "bench", "rate_limit_per_s": args.rate,
                  "burst": max(1, int(args.rate // 40)), "timeout_s": 10.0}
                 for name, url in zip(PROVIDERS, vendors.urls, strict=True)]
    settings = {
        "database_url": db_url, "secret_keys": generate_key(), "google_client_ids": TEST_CLIENT_ID,
        "google_certs_url": certs_url, "sheets_api_url": sheets_url, "providers": providers,
        "huey_sqlite_path": os.path.join(tmp, "huey.db"), "huey_name": "bench-sheets",
        "enrich_team_chunks": args.threads, "enrich_workers": args.workers, **_NO_VERIFIER, **settings,
    }
    services = Services.from_settings(Settings(_env_file=None, **settings))
    accounts = services.accounts
    team = accounts.create_team("bench", plan="professional")
    accounts.add_member("bench", "rep@bench.example")
    accounts.ledger.grant(team.id, 10_000_000, key="bench-topup", expires_at=None)
    services.waterfalls.set("bench", email_sources=list(PROVIDERS), phone_sources=list(PROVIDERS),
                            validate_email=False)
    return services, _sheet_rows(people, rows), settings


def run(args: argparse.Namespace, worker_processes: int = 0) -> dict:
    """One measured run: in this process (huey consumer threads) or on `worker_processes` workers."""
    from tests.google.identity import GoogleCertsServer
    from tests.google.sheets_server import SheetsServer

    vendors = VendorsProcess(args.latency_ms / 1000, args.rate, _phone_pools())
    try:
        with tempfile.TemporaryDirectory() as tmp, GoogleCertsServer() as certs, SheetsServer(
            reads_per_minute=QUOTA_PER_MINUTE, writes_per_minute=QUOTA_PER_MINUTE
        ) as sheets:
            if worker_processes:
                result = _run_on_workers(worker_processes, args, vendors, sheets, certs, tmp)
            else:
                result = _run_in_process(args, vendors, sheets, certs, tmp)
    finally:
        vendors.close()
    return result


def _run_in_process(args: argparse.Namespace, vendors, sheets, certs, tmp: str) -> dict:
    from core.jobs.consumer import start_in_process
    from sheets_addon.tasks import register_sheets_tasks

    services, rows, _ = _world(f"sqlite:///{tmp}/bench.db", args.rows, args, vendors, sheets.base_url,
                               certs.certs_url, tmp)
    jobs = services.job_queue
    register_sheets_tasks(jobs)
    jobs.huey.storage.flush_all()
    consumer = start_in_process(jobs, workers=args.threads, periodic=False)
    try:
        return _drive(services, rows, args, vendors, sheets, certs)
    finally:
        consumer.stop()


def _run_on_workers(n: int, args: argparse.Namespace, vendors, sheets, certs, tmp: str) -> dict:
    import json
    import subprocess
    import uuid

    from benchmarks.enrich import _drop_postgres, _scratch_postgres, _wait_started, _worker_pids, _workers_cpu_s

    pg_name, db_url = _scratch_postgres(f"sheets_{n}")
    workers: list[subprocess.Popen] = []
    try:
        huey_name = f"bench-sheets-{uuid.uuid4().hex[:8]}"
        services, rows, settings = _world(
            db_url, args.rows, args, vendors, sheets.base_url, certs.certs_url, tmp,
            redis_url=args.redis, huey_name=huey_name, enrich_team_chunks=2 * n,
        )
        providers = [
            {**p, "rate_limit_per_s": args.rate / n, "burst": max(1, int(args.rate / n // 40))}
            for p in settings["providers"]
        ]
        env = {
            **os.environ,
            "TRIBUTARY_DEVELOPMENT": "true",  # throwaway workers: no production keys to check
            "TRIBUTARY_DATABASE_URL": db_url,
            "TRIBUTARY_REDIS_URL": args.redis,
            "TRIBUTARY_HUEY_NAME": huey_name,
            "TRIBUTARY_SECRET_KEYS": settings["secret_keys"],  # the web encrypts the OAuth token, workers read it
            "TRIBUTARY_GOOGLE_CLIENT_IDS": settings["google_client_ids"],
            "TRIBUTARY_GOOGLE_CERTS_URL": certs.certs_url,
            "TRIBUTARY_SHEETS_API_URL": sheets.base_url,
            "TRIBUTARY_PROVIDERS": json.dumps(providers),
            "TRIBUTARY_ENRICH_TEAM_CHUNKS": str(2 * n),
            "TRIBUTARY_ENRICH_WORKERS": str(args.workers),
            "TRIBUTARY_VERIFY_DNS_NAMESERVERS": json.dumps(_NO_VERIFIER["verify_dns_nameservers"]),
            "TRIBUTARY_VERIFY_DNS_PORT": str(_NO_VERIFIER["verify_dns_port"]),
            "TRIBUTARY_VERIFY_SMTP_PORT": str(_NO_VERIFIER["verify_smtp_port"]),
        }
        cli = [sys.executable, "-m", "cli.main", "worker", "--no-periodic", "--threads", "2"]
        spy = bool(args.py_spy)
        workers = [subprocess.Popen([*_spy_prefix(args, f"workers-{n}-{i}"), *cli], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(n)]
        _wait_started(workers, spy=spy)
        cpu0 = _workers_cpu_s(workers, spy=spy)
        result = _drive(services, rows, args, vendors, sheets, certs)
        job_cpu = _workers_cpu_s(workers, spy=spy) - cpu0
        services.engine.dispose()
        if spy:  # py-spy writes its file when the worker under it exits
            for pid in _worker_pids(workers, spy=True):
                os.kill(pid, signal.SIGTERM)
            for w in workers:
                w.wait()
        return {"worker_processes": n, **result, "workers_job_cpu_s": round(job_cpu, 1)}
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()
        _drop_postgres(pg_name)


def _spy_prefix(args: argparse.Namespace, label: str) -> list[str]:
    """py-spy in front of a worker's command (raw stacks of the GIL's holder), or nothing."""
    if not args.py_spy:
        return []
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    out = str(Path(args.py_spy) / f"{label}.txt")
    return [py_spy, "record", "--format", "raw", "--rate", "200", "--gil", "--nonblocking", "-o", out, "--"]


def _drive(services, rows: list[list[str]], args: argparse.Namespace, vendors, sheets, certs) -> dict:
    """The sidebar's calls: start, then a poll every `poll_s` until the job ends; what it cost."""
    from web.app import create_app

    sheet = sheets.create_sheet([HEADER, *rows], title="Leads", row_count=args.rows + 1)
    token = sheets.issue_token("rep@bench.example", sheet.spreadsheet_id)
    client = create_app(services).test_client()
    vendors.reset()  # count from here

    def call(path: str, body: dict) -> dict:
        headers = {"Authorization": f"Bearer {certs.mint_id_token('rep@bench.example')}"}
        answer = client.post(f"/sheets/v1{path}", json=body, headers=headers)
        assert answer.status_code in (200, 202), answer.get_json()
        return answer.get_json()

    ref = {"spreadsheet_id": sheet.spreadsheet_id, "sheet_id": sheet.sheet_id, "sheet_name": "Leads",
           "range_a1": f"A1:E{args.rows + 1}"}
    body = {"sheet": ref, "oauth_token": token, "want": {"email": True, "mobile": True},
            "mapping": {"first_name": "A", "last_name": "B", "company": "C", "domain": "D"},
            "output": {"mode": "new_columns"}}
    calls_before = len(sheets.calls)
    busy0, own0 = _machine_busy_s(), sum(os.times()[:2])
    started = time.monotonic()
    view = call("/jobs", body)
    start_call_s = time.monotonic() - started
    tick = threading.Event()
    while view["status"] not in ("done", "incomplete", "cancelled", "failed"):
        tick.wait(args.poll_s)
        view = call(f"/jobs/{view['job_id']}/poll", {"oauth_token": token})
    wall = time.monotonic() - started
    busy, own = _machine_busy_s() - busy0, sum(os.times()[:2]) - own0
    counts = vendors.counts()
    served_at = [v.served_at for v in counts if v.served_at]
    job_calls = sheets.calls[calls_before:]
    reads = sum(1 for c in job_calls if c.kind == "read" and c.status == 200)
    writes = sum(1 for c in job_calls if c.kind == "write" and c.status == 200)
    served = [v.requests - v.rejected for v in counts]
    vendor_bound = max(served) / args.rate
    quota_bound = 60.0 * max(0, (max(reads, writes) - 1) // QUOTA_PER_MINUTE)
    bound = max(vendor_bound, quota_bound)
    return {
        "rows": args.rows, "status": view["status"], "rows_written": view["rows_written"],
        "credits": view["credits_spent"], "sheets_reads": reads, "sheets_writes": writes,
        "sheets_429": sum(1 for c in job_calls if c.status == 429), "vendor_requests": served,
        "vendor_429": [v.rejected for v in counts], "start_call_s": round(start_call_s, 1),
        # When the vendors were busy, from the start call: the edges of the wall time beyond them.
        "vendors_first_last_s": [round(min(a for a, _ in served_at) - started, 1),
                                 round(max(b for _, b in served_at) - started, 1)] if served_at else None,
        "wall_s": round(wall, 1), "vendor_bound_s": round(vendor_bound, 1), "quota_bound_s": round(quota_bound, 1),
        "ratio": round(wall / bound, 2) if bound else None,
        # The busiest vendor's requests per second from the start call (full block: its whole rate).
        "vendor_per_second": max(counts, key=lambda v: v.requests - v.rejected).sparkline(args.rate),
        # CPU seconds over the wall time: every process on the machine (cores: os.cpu_count()), and
        # this one (the app, the Sheets stand-in): a busy machine slows the job whatever its own CPU.
        "machine_cpu_s": f"{busy:.1f} of {wall * (os.cpu_count() or 1):.1f}", "this_process_cpu_s": round(own, 1),
    }


def _machine_busy_s() -> float:
    """CPU seconds every core spent not idle since boot (Linux /proc/stat: user..steal, less idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/second each vendor admits")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each vendor's answer time")
    parser.add_argument("--threads", type=int, default=4, help="huey worker threads (chunks in parallel)")
    parser.add_argument("--workers", type=int, default=16, help="lookups in flight (TRIBUTARY_ENRICH_WORKERS)")
    parser.add_argument("--poll-s", type=float, default=2.0, help="the sidebar's poll interval")
    parser.add_argument(
        "--worker-processes", type=int, nargs="+", metavar="N",
        help="run the job on N `tributary worker` processes (PostgreSQL + Redis), for each N given",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis for --worker-processes")
    parser.add_argument("--py-spy", metavar="DIR", help="with --worker-processes: py-spy each worker (raw stacks)")
    args = parser.parse_args(argv)
    for n in args.worker_processes or [0]:
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        result = run(args, n)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
