"""Every scripted mailnet behaviour, with the exact status, reasons and MX host the verifier must give."""

from __future__ import annotations

import pytest

from core.verify.pipeline import EmailVerifier
from storage.models.enums import EmailStatus
from tests.mailnet.net import MailNet

V, A, INV, U = EmailStatus.VERIFIED, EmailStatus.ACCEPT_ALL, EmailStatus.INVALID, EmailStatus.UNKNOWN

CASES = [
    # email, status, reasons, mx host used
    ("alice@known.test", V, [], "mx.known.test"),
    ("Alice@Known.TEST", V, [], "mx.known.test"),
    ("nobody@known.test", INV, ["mailbox_not_found"], "mx.known.test"),
    ("full@known.test", U, ["full_inbox"], "mx.known.test"),
    ("gone@known.test", INV, ["disabled"], "mx.known.test"),
    ("info@known.test", V, ["role_based"], "mx.known.test"),
    ("alice@catchall.test", A, ["catch_all"], "mx.catchall.test"),
    ("whoever@catchall.test", A, ["catch_all"], "mx.catchall.test"),
    ("alice@greylist.test", V, [], "mx.greylist.test"),
    ("alice@greyforever.test", U, ["greylisted"], "mx.greyforever.test"),
    ("alice@blocked.test", U, ["blocked"], "mx.blocked.test"),
    ("alice@slow.test", U, ["timeout"], None),
    ("alice@refused.test", U, ["unreachable"], None),
    ("alice@backup.test", V, [], "mx2.backup.test"),
    ("nobody@backup.test", INV, ["mailbox_not_found"], "mx2.backup.test"),
    ("alice@amx.test", V, [], "amx.test"),
    ("alice@nullmx.test", INV, ["null_mx"], None),
    ("alice@norecords.test", INV, ["no_mx"], None),
    ("alice@missing.test", INV, ["domain_not_found"], None),
    ("alice@dnstimeout.test", U, ["dns_timeout"], None),
    ("josé@utf8.test", V, [], "mx.utf8.test"),
    ("josé@asciionly.test", U, ["smtputf8_unsupported"], "mx.asciionly.test"),
    ("alice@bücher.test", V, [], "mx.xn--bcher-kva.test"),
]


@pytest.mark.parametrize(("email", "status", "reasons", "mx"), CASES, ids=[c[0] for c in CASES])
def test_each_behaviour_gives_exact_status_and_reasons(
    verifier: EmailVerifier, mailnet: MailNet, email: str, status: EmailStatus, reasons: list[str], mx: str | None
) -> None:
    result = verifier.verify_sync(email)
    assert (result.status, list(result.reasons), result.mx_host) == (status, reasons, mx), result.detail
    assert result.email == email
    # The harness's ground truth agrees with what we assert here.
    assert mailnet.truth(result.normalized or email) == status


def test_same_results_when_everything_is_one_batch(verifier: EmailVerifier) -> None:
    emails = [c[0] for c in CASES]
    results = verifier.verify_many_sync(emails)
    assert [(r.email, r.status, list(r.reasons), r.mx_host) for r in results] == [
        (e, s, r, m) for e, s, r, m in CASES
    ]


def test_greylisted_and_blocked_addresses_are_never_invalid(verifier: EmailVerifier) -> None:
    results = verifier.verify_many_sync(
        ["alice@greylist.test", "alice@greyforever.test", "alice@blocked.test", "bob@blocked.test"]
    )
    assert EmailStatus.INVALID not in {r.status for r in results}


def test_evidence_records_each_smtp_step_with_its_code(verifier: EmailVerifier) -> None:
    result = verifier.verify_sync("alice@known.test")
    steps = [(s.step, s.code, s.enhanced, s.host) for s in result.evidence]
    assert steps == [
        ("banner", 220, None, "mx.known.test"),
        ("ehlo", 250, None, "mx.known.test"),
        ("mail", 250, "2.1.0", "mx.known.test"),
        ("rcpt_probe", 550, "5.1.1", "mx.known.test"),
        ("rcpt", 250, "2.1.5", "mx.known.test"),
    ]
    assert result.catch_all is False
    assert result.checked_at.tzinfo is not None


def test_only_verified_is_chargeable(verifier: EmailVerifier) -> None:
    verified, catch_all, invalid = verifier.verify_many_sync(
        ["alice@known.test", "alice@catchall.test", "nobody@known.test"]
    )
    assert (verified.chargeable, catch_all.chargeable, invalid.chargeable) == (True, False, False)


def test_scores_rank_statuses(verifier: EmailVerifier) -> None:
    results = {
        r.email: r.score
        for r in verifier.verify_many_sync(
            [
                "alice@known.test",
                "info@known.test",
                "alice@catchall.test",
                "alice@greyforever.test",
                "nobody@known.test",
            ]
        )
    }
    assert results["alice@known.test"] > results["info@known.test"] > results["alice@catchall.test"]
    assert results["alice@catchall.test"] > results["alice@greyforever.test"] > results["nobody@known.test"] == 0
    assert all(0 <= s <= 100 for s in results.values())
