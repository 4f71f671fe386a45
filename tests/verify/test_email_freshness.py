"""Stored results and the freshness window, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, insert, select

from core.verify.freshness import ensure_fresh, latest_results
from core.verify.pipeline import EmailVerifier
from storage.db import read_transaction, run_write
from storage.models.contacts import EmailAddress
from storage.models.enums import EmailStatus
from storage.models.verification import EmailVerification
from storage.timeutil import utcnow
from tests.mailnet.net import MailNet


def history(engine: Engine, address: str) -> list[EmailVerification]:
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(EmailVerification).where(EmailVerification.address == address).order_by(EmailVerification.id)
        ).all()
    return [EmailVerification.model_validate(r._mapping) for r in rows]


def rcpt_count(net: MailNet, address: str) -> int:
    return sum(1 for line in net.commands() if line == f"RCPT TO:<{address}>")


def test_first_call_verifies_and_stores_then_reuses_within_the_window(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config())
    t0 = utcnow()
    first = ensure_fresh(engine, ["alice@known.test", "nobody@known.test"], verifier=verifier, now=t0)
    assert {a: r.status for a, r in first.items()} == {
        "alice@known.test": EmailStatus.VERIFIED,
        "nobody@known.test": EmailStatus.INVALID,
    }
    stored = history(engine, "alice@known.test")
    assert len(stored) == 1
    row = stored[0]
    assert (row.status, row.reasons, row.score, row.mx_host, row.catch_all) == (
        "verified",
        [],
        95,
        "mx.known.test",
        False,
    )
    assert row.checked_at == t0
    assert [step["step"] for step in row.evidence] == ["banner", "ehlo", "mail", "rcpt_probe", "rcpt"]

    # 29 days later: still fresh, nothing goes on the wire, the stored answer comes back.
    later = t0 + timedelta(days=29)
    again = ensure_fresh(engine, ["alice@known.test", "Nobody@Known.test"], verifier=verifier, now=later)
    assert again["alice@known.test"].status == EmailStatus.VERIFIED
    assert again["alice@known.test"].checked_at == t0
    assert again["alice@known.test"].evidence == first["alice@known.test"].evidence
    assert again["Nobody@Known.test"].status == EmailStatus.INVALID
    assert again["Nobody@Known.test"].reasons == ("mailbox_not_found",)
    assert rcpt_count(mailnet, "alice@known.test") == 1
    assert len(history(engine, "alice@known.test")) == 1


def test_stale_results_are_checked_again_and_appended(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config())
    t0 = utcnow()
    ensure_fresh(engine, ["alice@known.test"], verifier=verifier, now=t0)
    later = t0 + timedelta(days=31)
    result = ensure_fresh(engine, ["alice@known.test"], verifier=verifier, now=later)["alice@known.test"]
    assert (result.status, result.checked_at) == (EmailStatus.VERIFIED, later)
    assert rcpt_count(mailnet, "alice@known.test") == 2
    assert [r.checked_at for r in history(engine, "alice@known.test")] == [t0, later]
    assert latest_results(engine, {"alice@known.test"})["alice@known.test"].checked_at == later


def test_unknown_results_go_stale_sooner(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(temp_retries=0))
    t0 = utcnow()
    ensure_fresh(engine, ["alice@greyforever.test"], verifier=verifier, now=t0)
    ensure_fresh(engine, ["alice@greyforever.test"], verifier=verifier, now=t0 + timedelta(hours=1))
    assert mailnet.connections("mx.greyforever.test") == 1
    ensure_fresh(engine, ["alice@greyforever.test"], verifier=verifier, now=t0 + timedelta(hours=7))
    assert mailnet.connections("mx.greyforever.test") == 2


def test_window_is_a_setting(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config(freshness_window=timedelta(days=1)))
    t0 = utcnow()
    ensure_fresh(engine, ["alice@known.test"], verifier=verifier, now=t0)
    ensure_fresh(engine, ["alice@known.test"], verifier=verifier, now=t0 + timedelta(days=2))
    assert rcpt_count(mailnet, "alice@known.test") == 2


def test_matching_email_address_row_is_updated(engine: Engine, mailnet: MailNet) -> None:
    def seed(conn) -> None:  # type: ignore[no-untyped-def]
        fields = {"status": "unverified", "score": 0, "reasons": [], "created_at": utcnow()}
        conn.execute(
            insert(EmailAddress),
            [{"address": "Alice@known.test", **fields}, {"address": "other@known.test", **fields}],
        )

    run_write(engine, seed)
    verifier = EmailVerifier(mailnet.verifier_config())
    t0 = utcnow()
    ensure_fresh(engine, ["alice@known.test"], verifier=verifier, now=t0)
    with read_transaction(engine) as conn:
        rows = {
            r.address: r
            for r in conn.execute(
                select(EmailAddress.address, EmailAddress.status, EmailAddress.score, EmailAddress.reasons,
                       EmailAddress.checked_at)
            ).all()
        }
    assert (rows["Alice@known.test"].status, rows["Alice@known.test"].score) == ("verified", 95)
    assert rows["Alice@known.test"].checked_at == t0
    assert (rows["other@known.test"].status, rows["other@known.test"].checked_at) == ("unverified", None)


def test_bad_input_gets_a_result_but_no_history(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config())
    results = ensure_fresh(engine, ["", "x\r\n@known.test", "alice@known.test"], verifier=verifier)
    assert results[""].status == EmailStatus.INVALID
    assert results["x\r\n@known.test"].reasons == ("syntax",)
    assert results["alice@known.test"].status == EmailStatus.VERIFIED
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(EmailVerification)).scalar_one() == 1


def test_many_addresses_in_one_call(engine: Engine, mailnet: MailNet) -> None:
    verifier = EmailVerifier(mailnet.verifier_config())
    emails = [f"user{i}@known.test" for i in range(600)] + ["alice@known.test"]
    results = ensure_fresh(engine, emails, verifier=verifier)
    assert len(results) == 601 and results["alice@known.test"].status == EmailStatus.VERIFIED
    assert len(latest_results(engine, {e.lower() for e in emails})) == 601
