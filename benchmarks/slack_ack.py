"""Slack acknowledgement latency: `/tributary lookup` under 20 concurrent senders, against the app
under gunicorn (a subprocess bound to 127.0.0.1), while `tributary enrich` enriches a CSV.

    .venv/bin/python -m benchmarks.slack_ack [--requests 2000] [--senders 20] [--rows 3000] [--no-enrich]

Each request is signed exactly as Slack signs it. Two figures per request:
- ack: from sending the POST to receiving its HTTP response, which is what Slack's 3,000 ms limit
  applies to;
- answer: from sending the POST to the lookup's answer arriving at its response_url (the lookup runs
  after the ack, in a lazy listener) on a loopback Slack Web API.
It checks that every command got exactly one answer, and counts the person cards among them.
SQLite database (the embedded default). Load average is printed because the figures depend on it.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.slackapi.server import SlackApiServer  # noqa: E402
from tests.slackapi.signing import SlackSender  # noqa: E402

SECRET = "benchmark-signing-secret"
SLACK_LIMIT_MS = 3000
VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(url: str, rows: int, csv_path: Path) -> list[str]:
    from sqlalchemy import select

    from core.accounts import Accounts
    from core.identities import Identities
    from demo.world import seed_world
    from storage.db import make_engine, read_transaction
    from storage.migrate import upgrade
    from storage.models import Company, EmailAddress, Person

    upgrade(url)
    engine = make_engine(url)
    seed_world(engine, company_count=300, people=max(rows, 500))
    accounts = Accounts(engine)
    accounts.create_team("bench", plan="professional")
    accounts.add_member("bench", "rep@bench.example")
    accounts.ledger.grant(accounts.team("bench").id, 10_000_000, key="bench-topup", expires_at=None)
    links = Identities(engine, accounts)
    links.connect("T1", "bench")
    links.link(accounts.team("bench").id, "rep@bench.example", "UREP")
    with read_transaction(engine) as conn:
        people = conn.execute(
            select(Person.first_name, Person.last_name, Company.name, Company.domain)
            .join(Company, Company.id == Person.company_id)
            .order_by(Person.id)
            .limit(rows)
        ).all()
        emails = list(conn.execute(select(EmailAddress.address).order_by(EmailAddress.id).limit(200)).scalars())
    with csv_path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["First Name", "Last Name", "Company", "Website"])
        for p in people:
            out.writerow([p.first_name, p.last_name, p.name, f"https://www.{p.domain}/"])
    engine.dispose()
    return emails


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, values_ms: list[float]) -> Figures:
        ordered = sorted(values_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
        return cls(statistics.median(ordered), p99, ordered[-1])

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.1f} ms   p99 {self.p99_ms:.1f} ms   max {self.max_ms:.1f} ms"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rows", type=int, default=3000, help="rows of the CSV enriched in the background")
    parser.add_argument("--no-enrich", action="store_true", help="no background enrichment (to attribute its cost)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker")
    args = parser.parse_args(argv)
    load_before = _load()

    with TemporaryDirectory() as tmp, SlackApiServer(team_id="T1") as slack:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        csv_path = work / "in.csv"
        print(f"seeding {url} ...", flush=True)
        emails = _seed(url, args.rows, csv_path)
        port = _free_port()
        env = {
            **os.environ,
            "TRIBUTARY_DATABASE_URL": url,
            "TRIBUTARY_SLACK_BOT_TOKEN": "xoxb-bench",
            "TRIBUTARY_SLACK_SIGNING_SECRET": SECRET,
            "TRIBUTARY_SLACK_API_URL": slack.api_url,
            # One member sends every lookup: lift the per-member limit (it still counts, one upsert each).
            "TRIBUTARY_SLACK_LOOKUPS_PER_MINUTE": str(10**9),
            "TRIBUTARY_DEVELOPMENT": "true",  # a throwaway benchmark: no production keys needed
        }
        web = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "--config",
                str(REPO / "gunicorn.conf.py"),
                "--worker-class",
                "gthread",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "web.app:create_app()",
            ],
            env=env,
        )
        enrich = None
        sent_at: dict[str, float] = {}  # response_url key -> when its command was sent
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("gunicorn did not come up")
            if not args.no_enrich:
                enrich = subprocess.Popen(
                    [
                        str(VENV_BIN / "tributary"),
                        "enrich",
                        str(csv_path),
                        "-o",
                        str(work / "out.csv"),
                        "--team",
                        "bench",
                        "--member",
                        "rep@bench.example",
                        "--email",
                        "--mobile",
                        "--json",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)  # let the enrichment job get going
            senders = [SlackSender(f"{base}/slack/events", SECRET) for _ in range(args.senders)]

            def one(i: int) -> float:
                s, key = senders[i % args.senders], f"r{i}"
                sent_at[key] = time.monotonic()
                started = time.perf_counter()
                response = s.command(
                    f"lookup {emails[i % len(emails)]}", user="UREP", response_url=slack.response_url(key)
                )
                elapsed_ms = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.status_code
                return elapsed_ms

            # Warm up (imports, first auth.test, one lazy thread per worker), then wait for its answer so
            # it is not counted among the measured ones.
            for i in range(args.workers * 2):
                one(-1 - i)
            slack.wait_for(
                lambda calls: sum(c.method == "response_url" for c in calls) >= args.workers * 2,
                timeout_s=60,
                what="the warm-up answers",
            )
            enrich_running_at_start = enrich is not None and enrich.poll() is None
            with ThreadPoolExecutor(max_workers=args.senders) as pool:
                latencies = list(pool.map(one, range(args.requests)))
            enrich_running_at_end = enrich is not None and enrich.poll() is None
            calls = slack.wait_for(
                lambda calls: sum(c.method == "response_url" for c in calls) >= args.requests + args.workers * 2,
                timeout_s=max(120, args.requests / 5),
                what="every lookup's answer",
            )
        finally:
            if enrich is not None and enrich.poll() is None:
                enrich.terminate()
                enrich.wait(30)
            web.terminate()
            web.wait(30)

    answers = [c for c in calls if c.method == "response_url" and not c.params["_key"].startswith("r-")]
    keys = [c.params["_key"] for c in answers]
    # An answer is the person card (blocks), not an error text; one answer per command, none twice.
    cards = [c for c in answers if c.params.get("blocks") and not str(c.params.get("text", "")).startswith(":")]
    assert sorted(keys) == sorted(f"r{i}" for i in range(args.requests)), "missing or duplicated answers"
    answer_ms = [(c.received_monotonic_s - sent_at[c.params["_key"]]) * 1000 for c in answers]
    background = (
        "none (--no-enrich)"
        if args.no_enrich
        else f"tributary enrich of {args.rows} rows (--email --mobile), running at start: "
        f"{enrich_running_at_start}, at end: {enrich_running_at_end}"
    )
    print(
        f"/tributary lookup, {args.requests} requests, {args.senders} concurrent senders, "
        f"gunicorn gthread {args.workers}x{args.threads}, SQLite"
    )
    print(f"  background: {background}")
    print(f"  load average before: {load_before}, after: {_load()}")
    limit = f"(Slack's limit: {SLACK_LIMIT_MS} ms; aim p99 < 300 ms)"
    print(f"  ack (HTTP response to the POST):  {Figures.of(latencies)}   {limit}")
    print(f"  answer (respond via response_url): {Figures.of(answer_ms)}")
    span_s = max(c.received_monotonic_s for c in answers) - min(sent_at[k] for k in keys)
    print(
        f"  answers: {len(answers)} of {args.requests}, once each; person cards: {len(cards)}; "
        f"{len(answers) / span_s:.0f} lookups/s answered"
    )


if __name__ == "__main__":
    main()
