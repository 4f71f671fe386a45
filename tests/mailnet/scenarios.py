"""Ready-made worlds: every scripted behaviour once (for tests), and a large mixed one (benchmarks)."""

from __future__ import annotations

import random

from tests.mailnet.net import DnsShape, Mailbox, MailNet

SLOW_BANNER_S = 3.0  # far past the tests' 1 s connect timeout


def standard(net: MailNet) -> MailNet:
    """One domain per behaviour. Mailboxes that exist are named alice (and friends on known.test)."""
    net.add_domain(
        "known.test",
        mailboxes={
            "alice": Mailbox.OK,
            "bob": Mailbox.OK,
            "info": Mailbox.OK,
            "full": Mailbox.FULL,
            "gone": Mailbox.DISABLED,
        },
    )
    net.add_domain("catchall.test", mailboxes=["alice"], accept_all=True)
    net.add_domain("greylist.test", mailboxes=["alice"], greylist_attempts=1)
    net.add_domain("greyforever.test", mailboxes=["alice"], greylist_attempts=MailNet.FOREVER)
    net.add_domain("blocked.test", mailboxes=["alice"], block_sender=True)
    net.add_domain("slow.test", mailboxes=["alice"], banner_delay_s=SLOW_BANNER_S)
    net.add_domain("refused.test", mailboxes=["alice"], refuse=True)
    backup_hosts = [net.add_host("mx1.backup.test", refuse=True), net.add_host("mx2.backup.test")]
    net.add_domain("backup.test", mailboxes=["alice"], hosts=backup_hosts)
    net.add_domain("amx.test", mailboxes=["alice"], dns=DnsShape.A_ONLY)
    net.add_domain("nullmx.test", dns=DnsShape.NULL_MX)
    net.add_domain("norecords.test", dns=DnsShape.NO_RECORDS)
    net.add_domain("dnstimeout.test", dns=DnsShape.SILENT)
    net.add_domain("asciionly.test", mailboxes=["alice", "josé"], smtputf8=False)
    net.add_domain("utf8.test", mailboxes=["alice", "josé"])
    net.add_domain("xn--bcher-kva.test", mailboxes=["alice"])  # bücher.test
    return net


# Mix of domain behaviours in the benchmark world, by weight.
_BENCH_KINDS = [
    ("known", 55),
    ("catch_all", 10),
    ("greylist", 10),
    ("greylist_forever", 3),
    ("blocked", 4),
    ("backup_mx", 5),
    ("a_only", 4),
    ("refused", 2),
    ("null_mx", 2),
    ("nxdomain", 3),
    ("full_disabled", 2),
]


def benchmark(net: MailNet, *, emails: int, domains: int, seed: int = 7) -> list[str]:
    """Describe `domains` domains on `net` and return `emails` addresses spread over them.

    About half the addresses at mailbox-checking domains exist. Ground truth: `net.truth(address)`.
    """
    rng = random.Random(seed)
    kinds = [k for k, w in _BENCH_KINDS for _ in range(w)]
    rng.shuffle(kinds)  # every 100 domains hold the exact mix; fewer hold a sample of it
    names: list[str] = []
    for i in range(domains):
        kind = kinds[i % len(kinds)]
        name = f"d{i:04d}-{kind.replace('_', '')}.test"
        boxes = {f"user{j}": Mailbox.OK for j in range(0, 400, 2)}  # even users exist
        if kind == "known":
            net.add_domain(name, mailboxes=boxes)
        elif kind == "catch_all":
            net.add_domain(name, mailboxes=boxes, accept_all=True)
        elif kind == "greylist":
            net.add_domain(name, mailboxes=boxes, greylist_attempts=1)
        elif kind == "greylist_forever":
            net.add_domain(name, mailboxes=boxes, greylist_attempts=MailNet.FOREVER)
        elif kind == "blocked":
            net.add_domain(name, mailboxes=boxes, block_sender=True)
        elif kind == "backup_mx":
            hosts = [net.add_host(f"mx1.{name}", refuse=True), net.add_host(f"mx2.{name}")]
            net.add_domain(name, mailboxes=boxes, hosts=hosts)
        elif kind == "a_only":
            net.add_domain(name, mailboxes=boxes, dns=DnsShape.A_ONLY)
        elif kind == "refused":
            net.add_domain(name, mailboxes=boxes, refuse=True)
        elif kind == "null_mx":
            net.add_domain(name, dns=DnsShape.NULL_MX)
        elif kind == "nxdomain":
            net.add_domain(name, dns=DnsShape.NXDOMAIN)
        elif kind == "full_disabled":
            special = dict(boxes)
            for j in range(0, 400, 4):
                special[f"user{j}"] = Mailbox.FULL if j % 8 == 0 else Mailbox.DISABLED
            net.add_domain(name, mailboxes=special)
        names.append(name)
    addresses = [f"user{i // len(names)}@{names[i % len(names)]}" for i in range(emails)]
    rng.shuffle(addresses)
    return addresses
