"""Email verification throughput and accuracy on the loopback mailnet, against py3-validate-email.

    .venv/bin/python -m benchmarks.verify                     # 2,000 emails, 200 domains, 20 ms
    .venv/bin/python -m benchmarks.verify --emails 300 --domains 30 --peer-serial 50   # smoke run

Every SMTP command (and the banner) costs `--latency-ms` on the harness, as on a real network. The
peer, py3-validate-email, is pointed at the same harness the only ways it allows: dnspython's default
resolver (its MX lookups), smtplib's default port, and, because it connects to MX *names* with the
system resolver, a getaddrinfo shim in this process that asks the same harness DNS server for `.test`
names. Each run uses its own envelope sender so greylisting treats it as a stranger.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/verify.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# py3-validate-email starts a thread that downloads a blocklist at import unless told not to.
os.environ.setdefault("PY3VE_IGNORE_UPDATER", "1")

import dns.resolver  # noqa: E402

from core.verify.pipeline import EmailVerifier  # noqa: E402
from storage.models.enums import EmailStatus  # noqa: E402
from tests.mailnet.net import MailNet  # noqa: E402
from tests.mailnet.scenarios import benchmark  # noqa: E402

TIMEOUT_S = 5.0  # connect/command/DNS timeouts, both verifiers (no host in this world is slow)


@dataclass
class Run:
    name: str
    emails: list[str]
    predicted: list[EmailStatus]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.emails) / self.seconds


def score(net: MailNet, run: Run) -> dict[str, float | int]:
    truth = [net.truth(e) for e in run.emails]
    correct = sum(p == t for p, t in zip(run.predicted, truth, strict=True))
    false_invalid = [
        e for e, p, t in zip(run.emails, run.predicted, truth, strict=True) if p == EmailStatus.INVALID != t
    ]
    touchy = {
        name
        for name, spec in net.domains.items()
        if spec.greylist_attempts or any(h.block_sender for h in spec.hosts)
    }
    return {
        "accuracy": correct / len(truth),
        "false_invalid": len(false_invalid),
        "greylisted_or_blocked_as_invalid": sum(1 for e in false_invalid if e.rpartition("@")[2] in touchy),
    }


def run_ours(net: MailNet, emails: list[str]) -> Run:
    config = net.verifier_config(
        connect_timeout_s=TIMEOUT_S,
        command_timeout_s=TIMEOUT_S,
        dns_timeout_s=TIMEOUT_S,
        mail_from="ours@bench.tributary.test",
        retry_initial_wait_s=0.2,  # the harness greylists for 0.1 s: a scaled-down real greylist
        retry_max_wait_s=1.0,
    )
    verifier = EmailVerifier(config)  # fresh: empty DNS and catch-all caches
    start = time.perf_counter()
    results = verifier.verify_many_sync(emails)
    seconds = time.perf_counter() - start
    return Run("tributary (async, one batch)", emails, [r.status for r in results], seconds)


def point_peer_at(net: MailNet) -> None:
    """Configure py3-validate-email's dependencies, in this process only."""
    import smtplib

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = net.dns_port
    dns.resolver.default_resolver = resolver
    smtplib.SMTP.default_port = net.smtp_port
    original: Callable[..., list] = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-untyped-def]
        if isinstance(host, str) and host.rstrip(".").endswith(".test"):
            answer = resolver.resolve(host, "A", lifetime=TIMEOUT_S)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (rr.address, port)) for rr in answer]
        return original(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo


def peer_check(sender: str) -> Callable[[str], EmailStatus]:
    from validate_email import validate_email

    def check(email: str) -> EmailStatus:
        verdict = validate_email(
            email,
            dns_timeout=TIMEOUT_S,
            smtp_timeout=TIMEOUT_S,
            smtp_helo_host="peer.bench.tributary.test",
            smtp_from_address=sender,
        )
        # True: deliverable, False: not, None: ambiguous. It has no notion of catch-all.
        return {True: EmailStatus.VERIFIED, False: EmailStatus.INVALID}.get(verdict, EmailStatus.UNKNOWN)

    return check


def run_peer_serial(emails: list[str]) -> Run:
    check = peer_check("peer-serial@bench.tributary.test")
    start = time.perf_counter()
    predicted = [check(e) for e in emails]
    return Run("py3-validate-email, one by one", emails, predicted, time.perf_counter() - start)


def run_peer_pool(emails: list[str], threads: int) -> Run:
    check = peer_check("peer-pool@bench.tributary.test")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        predicted = list(pool.map(check, emails))
    return Run(f"py3-validate-email, {threads} threads", emails, predicted, time.perf_counter() - start)


def _serve(conn: multiprocessing.connection.Connection, world: dict[str, float | int]) -> None:
    """Child process: run the benchmark mailnet until the parent says stop."""
    net = MailNet(latency_s=float(world["latency_s"]), greylist_min_delay_s=0.1)
    benchmark(net, emails=int(world["emails"]), domains=int(world["domains"]), seed=int(world["seed"]))
    with net:
        conn.send((net.dns_port, net.smtp_port))
        conn.recv()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--peer-serial", type=int, default=200, help="emails for the peer's one-by-one run (0: all)"
    )
    parser.add_argument("--peer-pool", type=int, default=0, help="emails for the peer's thread-pool run (0: all)")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--in-process", action="store_true", help="run the harness in this process (its threads compete for the GIL)"
    )
    args = parser.parse_args(argv)

    world = {"latency_s": args.latency_ms / 1000, "emails": args.emails, "domains": args.domains}
    world["seed"] = args.seed
    net = MailNet(latency_s=args.latency_ms / 1000, greylist_min_delay_s=0.1)
    emails = benchmark(net, emails=args.emails, domains=args.domains, seed=args.seed)
    serial_emails = emails[: args.peer_serial or None]
    pool_emails = emails[: args.peer_pool or None]
    truth = Counter(str(net.truth(e)) for e in emails)
    print(
        f"mailnet: {len(emails)} emails over {len(net.domains)} domains, {args.latency_ms:g} ms per SMTP command; "
        f"truth: {dict(sorted(truth.items()))}"
    )
    if args.in_process:
        with net:
            ours, serial, pool = _measure(net, emails, serial_emails, pool_emails, args.threads)
    else:
        # The same world in a child process: both verifiers get this process to themselves.
        parent, child = multiprocessing.get_context("spawn").Pipe()
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, world), daemon=True)
        server.start()
        try:
            net.attach(*parent.recv())
            ours, serial, pool = _measure(net, emails, serial_emails, pool_emails, args.threads)
        finally:
            parent.send("stop")
            server.join(timeout=30)
            if server.is_alive():
                server.terminate()

    _report(net, args.threads, ours, serial, pool)


def _measure(
    net: MailNet, emails: list[str], serial_emails: list[str], pool_emails: list[str], threads: int
) -> tuple[Run, Run, Run]:
    ours = run_ours(net, emails)
    point_peer_at(net)
    return ours, run_peer_serial(serial_emails), run_peer_pool(pool_emails, threads)


def _report(net: MailNet, threads: int, ours: Run, serial: Run, pool: Run) -> None:
    serial_emails, pool_emails = serial.emails, pool.emails
    header = f"{'run':<36} {'emails':>6} {'seconds':>8} {'verif/s':>9} {'accuracy':>9} {'false inv':>9}"
    print(f"\n{header} {'grey/block inv':>14}")
    for run in (ours, serial, pool):
        s = score(net, run)
        print(
            f"{run.name:<36} {len(run.emails):>6} {run.seconds:>8.2f} {run.rate:>9.1f} {s['accuracy']:>9.1%} "
            f"{s['false_invalid']:>9} {s['greylisted_or_blocked_as_invalid']:>14}"
        )
    # Our accuracy on exactly the peer's subsets, so accuracy is compared like for like.
    for label, subset, peer in (("one-by-one", serial_emails, serial), ("pool", pool_emails, pool)):
        mine = Run("", subset, ours.predicted[: len(subset)], 1.0)
        print(
            f"accuracy on the peer's {label} subset ({len(subset)}): tributary {score(net, mine)['accuracy']:.1%}"
            f" vs peer {score(net, peer)['accuracy']:.1%}"
        )
    print(f"\nthroughput ratio vs peer one-by-one: {ours.rate / serial.rate:.1f}x")
    print(f"throughput ratio vs peer {threads} threads: {ours.rate / pool.rate:.1f}x")
    wrong = Counter(
        (str(net.truth(e)), str(p)) for e, p in zip(ours.emails, ours.predicted, strict=True) if p != net.truth(e)
    )
    if wrong:
        print(f"tributary misses (truth, said): {dict(wrong)}")


if __name__ == "__main__":
    main()
