"""How the SMTP probe behaves on the wire: sessions, catch-all cache, retries, limits, injection."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from core.verify.dns import MailResolver
from core.verify.pipeline import EmailVerifier
from core.verify.probe import SmtpProber
from core.verify.replies import Outcome
from core.verify.syntax import ParsedAddress
from storage.models.enums import EmailStatus
from tests.mailnet.net import MailNet

V, INV, U = EmailStatus.VERIFIED, EmailStatus.INVALID, EmailStatus.UNKNOWN


def rcpts(net: MailNet, host: str) -> list[str]:
    return [line for line in net.commands(host) if line.startswith("RCPT TO:")]


def test_targets_of_one_domain_share_one_session(verifier: EmailVerifier, mailnet: MailNet) -> None:
    emails = ["alice@known.test", "bob@known.test", "nobody@known.test", "full@known.test", "gone@known.test"]
    results = verifier.verify_many_sync(emails)
    assert [r.status for r in results] == [V, V, INV, U, INV]
    assert mailnet.connections("mx.known.test") == 1
    commands = mailnet.commands("mx.known.test")
    assert commands[0] == "EHLO verifier.tributary.test"
    assert commands[1] == "MAIL FROM:<probe@verifier.tributary.test>"
    assert commands[2].startswith("RCPT TO:<tributary-probe-")  # catch-all probe before the targets
    assert commands[3:] == [f"RCPT TO:<{e}>" for e in emails] + ["QUIT"]


def test_sessions_are_split_at_max_rcpt_per_session(mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(max_rcpt_per_session=2))
    results = verifier.verify_many_sync([f"user{i}@known.test" for i in range(5)] + ["alice@known.test"])
    assert {r.status for r in results} == {INV, V}
    assert mailnet.connections("mx.known.test") == 3
    # Only the first session asks whether the domain is catch-all; the others reuse the answer...
    # unless they ran at the same time, which is allowed: at most one probe per session.
    probes = [line for line in rcpts(mailnet, "mx.known.test") if "tributary-probe-" in line]
    assert 1 <= len(probes) <= 3


def test_duplicates_are_probed_once_and_each_gets_a_result(verifier: EmailVerifier, mailnet: MailNet) -> None:
    results = verifier.verify_many_sync(["alice@known.test", "ALICE@known.test", "alice@known.test"])
    assert [r.status for r in results] == [V, V, V]
    assert [r.email for r in results] == ["alice@known.test", "ALICE@known.test", "alice@known.test"]
    assert sum(1 for line in rcpts(mailnet, "mx.known.test") if "alice" in line.lower()) == 1


def test_catch_all_answer_is_cached_per_domain(verifier: EmailVerifier, mailnet: MailNet) -> None:
    first = verifier.verify_sync("alice@catchall.test")
    second = verifier.verify_sync("bob@catchall.test")
    assert (first.status, second.status) == (EmailStatus.ACCEPT_ALL, EmailStatus.ACCEPT_ALL)
    probes = [line for line in rcpts(mailnet, "mx.catchall.test") if "tributary-probe-" in line]
    assert len(probes) == 1
    assert mailnet.connections("mx.catchall.test") == 2
    assert verifier.prober.catch_all_cached("catchall.test") is True
    assert [s.step for s in second.evidence] == ["banner", "ehlo", "mail", "rcpt"]


def test_not_catch_all_is_cached_too(verifier: EmailVerifier, mailnet: MailNet) -> None:
    verifier.verify_sync("alice@known.test")
    assert verifier.verify_sync("bob@known.test").status == V
    assert len([line for line in rcpts(mailnet, "mx.known.test") if "tributary-probe-" in line]) == 1


def test_first_mx_down_second_answers(verifier: EmailVerifier, mailnet: MailNet) -> None:
    result = verifier.verify_sync("alice@backup.test")
    assert (result.status, result.mx_host) == (V, "mx2.backup.test")
    connect = result.evidence[0]
    assert (connect.step, connect.host, connect.code) == ("connect", "mx1.backup.test", None)
    assert "refused" in connect.text.lower()
    assert mailnet.connections("mx2.backup.test") == 1


def test_greylisting_is_retried_then_verified(verifier: EmailVerifier, mailnet: MailNet) -> None:
    result = verifier.verify_sync("alice@greylist.test")
    assert (result.status, list(result.reasons)) == (V, [])
    assert mailnet.connections("mx.greylist.test") == 2  # greylisted once, then let through
    attempts = [(s.step, s.code, s.attempt) for s in result.evidence if s.step.startswith("rcpt")]
    assert attempts == [("rcpt_probe", 451, 1), ("rcpt", 451, 1), ("rcpt_probe", 550, 2), ("rcpt", 250, 2)]
    # The retry asks about the same probe mailbox, or a greylisting server would never let it through.
    probe_lines = [line for line in rcpts(mailnet, "mx.greylist.test") if "tributary-probe-" in line]
    assert len(set(probe_lines)) == 1


def test_persistent_greylisting_gives_up_as_unknown_after_the_retries(mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(temp_retries=3))
    result = verifier.verify_sync("alice@greyforever.test")
    assert (result.status, list(result.reasons)) == (U, ["greylisted"])
    assert mailnet.connections("mx.greyforever.test") == 4  # first attempt + 3 retries


def test_no_retry_when_disabled(mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(temp_retries=0))
    assert verifier.verify_sync("alice@greylist.test").reasons == ("greylisted",)
    assert mailnet.connections("mx.greylist.test") == 1


def test_blocklisted_sender_never_reaches_rcpt(verifier: EmailVerifier, mailnet: MailNet) -> None:
    result = verifier.verify_sync("alice@blocked.test")
    assert (result.status, list(result.reasons)) == (U, ["blocked"])
    assert result.evidence[-1].step == "mail" and result.evidence[-1].enhanced == "5.7.1"
    assert rcpts(mailnet, "mx.blocked.test") == []


def test_slow_banner_times_out_at_the_configured_timeout(mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(connect_timeout_s=0.2))
    loop = asyncio.new_event_loop()
    try:
        start = loop.time()
        result = loop.run_until_complete(verifier.verify("alice@slow.test"))
        elapsed = loop.time() - start
    finally:
        loop.close()
    assert (result.status, list(result.reasons)) == (U, ["timeout"])
    assert elapsed < 2.0  # the banner comes after 3 s; we must not have waited for it


def test_per_host_and_global_limits_bound_open_sessions(mailnet: MailNet) -> None:
    net = MailNet(latency_s=0.02)
    domains = [f"d{i}.test" for i in range(6)]
    shared = [net.add_host("mx.shared.test")]
    for d in domains:
        net.add_domain(d, mailboxes=["alice"], hosts=shared)
    with net:
        verifier = EmailVerifier(net.verifier_config(per_host_concurrency=2, max_rcpt_per_session=1))
        results = verifier.verify_many_sync([f"{u}@{d}" for d in domains for u in ("alice", "bob")])
        assert {r.status for r in results} == {V, INV}
        assert net._smtp is not None
        assert net._smtp.peak["mx.shared.test"] == 2

    net = MailNet(latency_s=0.02)
    for d in domains:
        net.add_domain(d, mailboxes=["alice"])
    with net:
        verifier = EmailVerifier(net.verifier_config(max_concurrency=3))
        verifier.verify_many_sync([f"alice@{d}" for d in domains])
        assert net._smtp is not None
        assert net._smtp.peak_total == 3


def test_each_domain_is_resolved_once_per_batch(verifier: EmailVerifier, mailnet: MailNet) -> None:
    verifier.verify_many_sync([f"user{i}@known.test" for i in range(30)] + ["alice@catchall.test"] * 3)
    mx_queries = [q for q in mailnet.dns_queries if q[1] == "MX"]
    assert sorted(mx_queries) == [("catchall.test", "MX"), ("known.test", "MX")]
    # ...and cached (with its TTL) for the next batch.
    verifier.verify_sync("bob@known.test")
    assert len([q for q in mailnet.dns_queries if q[1] == "MX"]) == 2


def test_results_stream_before_slow_domains_finish(mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(connect_timeout_s=1.0))

    async def run() -> list[str]:
        return [r.email async for r in verifier.verify_many(["alice@slow.test", "alice@known.test", ""])]

    order = asyncio.run(run())
    assert order == ["", "alice@known.test", "alice@slow.test"]


def test_many_domains_in_one_batch(mailnet: MailNet) -> None:
    net = MailNet()
    for i in range(40):
        net.add_domain(f"bulk{i}.test", mailboxes=["alice"], accept_all=i % 4 == 0)
    with net:
        verifier = EmailVerifier(net.verifier_config())
        emails = [f"{u}@bulk{i}.test" for i in range(40) for u in ("alice", "zed")]
        results = verifier.verify_many_sync(emails)
        assert [r.status for r in results] == [net.truth(e) for e in emails]
        assert net.connections() == 40


# ---- bad input: per-item results, the rest of the batch untouched, nothing unsafe on the wire

BAD = [
    ("", "empty address"),
    ("   ", "empty address"),
    ("not-an-address", "@-sign"),
    ("a" * 290 + "@known.test", "too long"),
    ("alice@known.test\r\nRCPT TO:<bob@known.test>", "control character"),
    ("alice@known.test\nQUIT", "control character"),
    ("ali\x00ce@known.test", "control character"),
    ("<alice@known.test>", ""),
    ("alice@@known.test", ""),
]


def test_bad_input_gives_clear_per_item_results_and_leaves_the_batch_alone(
    verifier: EmailVerifier, mailnet: MailNet
) -> None:
    emails = ["alice@known.test", *(b for b, _ in BAD), "nobody@known.test", None]
    results = verifier.verify_many_sync(emails)  # type: ignore[list-item]
    assert (results[0].status, results[-2].status) == (V, INV)
    assert results[-2].reasons == ("mailbox_not_found",)
    for result, (raw, message) in zip(results[1:-2], BAD, strict=True):
        assert result.email == raw
        assert (result.status, result.reasons, result.score) == (INV, ("syntax",), 0)
        assert result.detail and message.lower() in result.detail.lower()
    assert (results[-1].status, results[-1].reasons) == (INV, ("syntax",))
    assert "not a string" in (results[-1].detail or "")


def test_crlf_injection_never_reaches_the_wire(verifier: EmailVerifier, mailnet: MailNet) -> None:
    verifier.verify_many_sync(
        [
            "alice@known.test\r\nRCPT TO:<bob@known.test>",
            "x@known.test\rDATA",
            "bob@known.test",
        ]
    )
    wire = mailnet.received()
    assert b"DATA" not in wire
    assert wire.count(b"RCPT TO:<bob@known.test>") == 1  # only the honest request for bob
    assert b"\r\r" not in wire and b"\n\n" not in wire.replace(b"\r\n", b"")
    assert all(line.startswith((b"EHLO", b"MAIL", b"RCPT", b"QUIT")) for w in mailnet.wires for line in w.lines if line)


def test_prober_refuses_an_unsafe_target_even_if_syntax_let_it_through(mailnet: MailNet) -> None:
    """Defence in depth: a ParsedAddress built by other code with CR/LF in it is refused at the wire."""
    config = mailnet.verifier_config()
    evil = ParsedAddress(
        original="evil",
        normalized="alice@known.test\r\nRCPT TO:<bob@known.test>",
        local_part="alice",
        domain="known.test\r\nRCPT TO:<bob@known.test>",
        ascii_domain="known.test\r\nRCPT TO:<bob@known.test>",
        smtputf8=False,
    )
    good = dataclasses.replace(evil, normalized="alice@known.test", domain="known.test", ascii_domain="known.test")

    async def run() -> dict:
        route = await MailResolver(config).route("known.test")
        return await SmtpProber(config).probe(route, [evil, good])

    probes = asyncio.run(run())
    assert probes[evil.key].outcome == Outcome.UNSAFE_ADDRESS
    assert probes[good.key].outcome == Outcome.ACCEPTED
    assert b"bob" not in mailnet.received()


@pytest.mark.parametrize("value", ["probe@x.test\r\nDATA", "bad name", ""])
def test_config_refuses_unsafe_helo_and_sender(value: str) -> None:
    from core.verify.config import VerifierConfig

    with pytest.raises(ValueError):
        VerifierConfig(mail_from=value)
    with pytest.raises(ValueError):
        VerifierConfig(helo_name=value)


def test_starttls_when_offered_and_only_when_enabled() -> None:
    pytest.importorskip("cryptography")
    net = MailNet()
    net.add_domain("tls.test", mailboxes=["alice"], starttls=True)
    with net:
        result = EmailVerifier(net.verifier_config()).verify_sync("alice@tls.test")
        assert (result.status, result.reasons) == (V, ())
        assert [(s.step, s.code) for s in result.evidence] == [
            ("banner", 220),
            ("ehlo", 250),
            ("starttls", 220),
            ("ehlo", 250),
            ("mail", 250),
            ("rcpt_probe", 550),
            ("rcpt", 250),
        ]
        plain = EmailVerifier(net.verifier_config(starttls=False)).verify_sync("alice@tls.test")
        assert plain.status == V and "starttls" not in [s.step for s in plain.evidence]
        assert net.commands("mx.tls.test").count("STARTTLS") == 1
