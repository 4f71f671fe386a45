"""The harness itself: clean start/stop, ground truth, recording."""

from __future__ import annotations

import socket
import threading

from storage.models.enums import EmailStatus
from tests.mailnet import MailNet
from tests.mailnet.scenarios import benchmark, standard


def test_start_and_stop_leave_nothing_running() -> None:
    before = set(threading.enumerate())
    net = standard(MailNet())
    with net:
        smtp_port, dns_port = net.smtp_port, net.dns_port
        ip = net.domains["known.test"].hosts[0].ip
        with socket.create_connection((ip, smtp_port), timeout=2) as sock:
            assert sock.recv(100).startswith(b"220 ")
    assert set(threading.enumerate()) - before == set()
    for address, port in ((ip, smtp_port), ("127.0.0.1", dns_port)):
        with socket.socket() as sock:
            assert sock.connect_ex((address, port)) != 0  # nothing listens any more


def test_stop_closes_sessions_still_open() -> None:
    net = standard(MailNet())
    with net:
        ip = net.domains["known.test"].hosts[0].ip
        sock = socket.create_connection((ip, net.smtp_port), timeout=2)
        sock.recv(100)
    sock.settimeout(2)
    assert sock.recv(100) == b""  # closed by the harness
    sock.close()


def test_ground_truth() -> None:
    net = standard(MailNet())
    assert net.truth("alice@known.test") == EmailStatus.VERIFIED
    assert net.truth("x@known.test") == EmailStatus.INVALID
    assert net.truth("x@catchall.test") == EmailStatus.ACCEPT_ALL
    assert net.truth("alice@greylist.test") == EmailStatus.VERIFIED
    assert net.truth("alice@greyforever.test") == EmailStatus.UNKNOWN
    assert net.truth("alice@blocked.test") == EmailStatus.UNKNOWN
    assert net.truth("alice@backup.test") == EmailStatus.VERIFIED
    assert net.truth("x@nowhere.test") == EmailStatus.INVALID


def test_benchmark_world_is_deterministic_and_mixed() -> None:
    a, b = MailNet(), MailNet()
    emails = benchmark(a, emails=500, domains=50)
    assert emails == benchmark(b, emails=500, domains=50)
    assert len(emails) == 500 and len({e.split("@")[1] for e in emails}) == 50
    truths = {a.truth(e) for e in emails}
    assert truths == {EmailStatus.VERIFIED, EmailStatus.INVALID, EmailStatus.ACCEPT_ALL, EmailStatus.UNKNOWN}
