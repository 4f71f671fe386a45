"""REST API overhead: `POST /api/v1/people/match` for database hits under gunicorn on loopback, next to
the same operation called on the core service directly, in the same run; and `bulk_match` of 100
people against 100 single calls.

    .venv/bin/python -m benchmarks.api [--people 200] [--requests 800] [--database-url URL]

Database hits: every person is in the contributor database with a verified email and was accessed
by the team before the run, so each match finds the person, replays the free data request and
answers (what a CRM sync re-reading its contacts does). Both sides do exactly that; the API side
adds HTTP, the key's lookup, the rate-limit count (a database write per request without Redis) and
JSON. SQLite (the embedded default) unless --database-url names a PostgreSQL database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
AIM_RATIO_AT_16 = 1.5


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(url: str, people: int):
    from sqlalchemy import update

    from core.people.contacts import NewEmail, NewPerson, add_person
    from core.services import Services
    from core.settings import Settings
    from storage.migrate import upgrade
    from storage.models import Plan
    from storage.models.enums import EmailStatus, Feature
    from storage.timeutil import utcnow

    upgrade(url)
    services = Services.from_settings(Settings(database_url=url))
    services.accounts.create_team("bench", plan="professional")
    services.accounts.add_member("bench", "rep@bench.test")
    with services.engine.begin() as conn:  # the benchmark measures the calls, not the limit
        conn.execute(update(Plan.__table__).values(api_requests_per_minute=10_000_000))
    now = utcnow()
    ids = []
    for i in range(people):
        pid = add_person(
            services.engine,
            NewPerson(
                full_name=f"Person {i} Bench",
                company=f"Company {i % 20}",
                domain=f"company{i % 20}.test",
                emails=[NewEmail(f"p{i}@company{i % 20}.test", EmailStatus.VERIFIED, 95, now)],
            ),
        )
        services.data_requests.access_email("bench", "rep@bench.test", pid, feature=Feature.CLI)
        ids.append(pid)
    _, key = services.api.keys.create("bench", "rep@bench.test", "benchmark")
    return services, key, ids


def _run(clients: int, total: int, call: Callable[[int], None]) -> tuple[float, list[float]]:
    """(requests per second, latencies in ms) of `total` calls spread over `clients` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def client(c: int) -> None:
        mine = []
        for i in range(per_client):
            start = time.perf_counter()
            call(c * per_client + i)
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _line(name: str, rps: float, lat: list[float]) -> str:
    return f"{name:<34} {rps:8.0f} req/s   p50 {_pct(lat, 50):7.2f} ms   p99 {_pct(lat, 99):7.2f} ms"


def _start_gunicorn(url: str, port: int, workers: int, threads: int, redis_url: str | None) -> subprocess.Popen:
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": url}
    if redis_url:
        env.update(TRIBUTARY_REDIS_URL=redis_url, TRIBUTARY_RATE_LIMIT_REDIS_PREFIX=f"bench:{os.getpid()}:")
    return subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"),
            "--workers", str(workers), "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "web.app:create_app()",
        ],
        env=env,
    )


def _wait_up(base: str) -> None:
    for _ in range(300):
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--requests", type=int, default=800, help="calls per measured configuration")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None, help="count rate limits in Redis (else in the database)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    from core.api.people import MatchQuery

    with TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        services, key, ids = _seed(url, args.people)
        caller = services.api.caller(key)
        port = _free_port()
        web = _start_gunicorn(url, port, args.workers, args.threads, args.redis_url)
        base = f"http://127.0.0.1:{port}"
        sessions = threading.local()

        def api_call(i: int) -> None:
            session = getattr(sessions, "s", None) or requests.Session()
            sessions.s = session
            r = session.post(f"{base}/api/v1/people/match", json={"id": ids[i % len(ids)]},
                             headers={"X-Api-Key": key}, timeout=60)
            if r.status_code != 200 or r.json()["data"]["credits_charged"] != 0:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:200]}")

        def direct_call(i: int) -> None:
            answer = services.api.match(caller, MatchQuery(id=ids[i % len(ids)]))
            if answer.credits_charged != 0 or answer.email is None:
                raise SystemExit("unexpected direct answer")

        try:
            _wait_up(base)
            _run(4, 200, api_call)  # warm both sides up (connections, caches)
            _run(4, 200, direct_call)
            print(f"people/match, database hits, {args.people} people, {args.requests} calls per line; "
                  f"gunicorn gthread {args.workers}x{args.threads}; {url.split(':')[0]}; "
                  f"rate limits in {'Redis' if args.redis_url else 'the database'}; "
                  f"load average {os.getloadavg()[0]:.2f}")
            results = {}
            for clients in (1, 16):
                d_rps, d_lat = _run(clients, args.requests, direct_call)
                a_rps, a_lat = _run(clients, args.requests, api_call)
                results[clients] = (d_rps, a_rps, d_lat, a_lat)
                print(_line(f"direct core call, {clients} client(s)", d_rps, d_lat))
                print(_line(f"API over HTTP,    {clients} client(s)", a_rps, a_lat))
                print(f"  API/direct: time per call (throughput ratio) {d_rps / a_rps:.2f}x, "
                      f"p50 {_pct(a_lat, 50) / _pct(d_lat, 50):.2f}x")
            d_rps, a_rps, _, _ = results[16]
            ratio = d_rps / a_rps
            verdict = "met" if ratio <= AIM_RATIO_AT_16 else "MISSED"
            print(f"aim: API at most {AIM_RATIO_AT_16}x the direct call at 16 clients: {ratio:.2f}x ({verdict})")
            _bulk_vs_single(base, key, ids)
        finally:
            web.terminate()
            web.wait(timeout=30)


def _bulk_vs_single(base: str, key: str, ids: list[int], rounds: int = 5) -> None:
    session = requests.Session()
    headers = {"X-Api-Key": key}
    hundred = ids[:100]
    bulk, single = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        r = session.post(f"{base}/api/v1/people/bulk_match", json={"people": [{"id": i} for i in hundred]},
                         headers=headers, timeout=120)
        bulk.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200 or r.json()["meta"]["matched"] != len(hundred):
            raise SystemExit(f"unexpected bulk answer {r.status_code}: {r.text[:200]}")
        start = time.perf_counter()
        for i in hundred:
            session.post(f"{base}/api/v1/people/match", json={"id": i}, headers=headers, timeout=60)
        single.append((time.perf_counter() - start) * 1000)
    b, s = statistics.median(bulk), statistics.median(single)
    print(f"bulk_match of {len(hundred)}: {b:.0f} ms; {len(hundred)} single calls: {s:.0f} ms "
          f"({s / b:.1f}x); median of {rounds}")


if __name__ == "__main__":
    main()
