"""Pure pieces of the email verifier: reply classification, syntax, typos, domain facts, scores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.verify.domain_facts import domain_facts, is_disposable, is_role_account
from core.verify.replies import Outcome, Reply, classify_rcpt, classify_session
from core.verify.result import EmailResult, score_for
from core.verify.smtp import SmtpStep, UnsafeCommand, check_wire_safe
from core.verify.syntax import ParsedAddress, SyntaxProblem, parse_address, suggest_domain
from storage.models.enums import EmailStatus

RCPT_REPLIES = [
    (250, "2.1.5 OK", Outcome.ACCEPTED),
    (251, "User not local; will forward", Outcome.ACCEPTED),
    (550, "5.1.1 <x@y.com>: Recipient address rejected: User unknown", Outcome.NOT_FOUND),
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", Outcome.NOT_FOUND),
    (553, "5.1.3 malformed address", Outcome.NOT_FOUND),
    (550, "5.2.1 Mailbox disabled", Outcome.DISABLED),
    (552, "5.2.2 Mailbox full", Outcome.FULL_INBOX),
    (452, "4.2.2 Mailbox over quota", Outcome.FULL_INBOX),
    (554, "5.7.1 Service unavailable; client host blocked using zen.spamhaus.org", Outcome.BLOCKED),
    (550, "5.7.1 Relaying denied", Outcome.BLOCKED),
    (550, "5.7.606 Access denied, banned sending IP", Outcome.BLOCKED),
    (451, "4.7.1 Greylisted, please try again later", Outcome.GREYLISTED),
    (450, "Greylisted for 5 minutes", Outcome.GREYLISTED),
    (421, "4.3.2 Service shutting down", Outcome.TEMPORARY),
    (450, "4.2.0 Mailbox temporarily unavailable", Outcome.TEMPORARY),
    # No enhanced code: the text decides, then the basic code.
    (550, "No such user here", Outcome.NOT_FOUND),
    (550, "Requested action not taken: mailbox unavailable", Outcome.NOT_FOUND),
    (550, "Your IP is listed at bl.spamcop.net", Outcome.BLOCKED),
    (550, "Account disabled", Outcome.DISABLED),
    (550, "Please try again later", Outcome.TEMPORARY),
    (550, "", Outcome.NOT_FOUND),
    (554, "Transaction failed", Outcome.BLOCKED),
    (552, "", Outcome.FULL_INBOX),
    # Exchange Online says "no such user" with 5.4.1: the text settles it.
    (550, "5.4.1 Recipient address rejected: Access denied. AS(201806281)", Outcome.NOT_FOUND),
    # An enhanced code whose class contradicts the reply code is ignored.
    (550, "4.7.1 greylisted", Outcome.TEMPORARY),
    (500, "5.5.1 Command unrecognized", Outcome.PROTOCOL_ERROR),
    (354, "go ahead", Outcome.PROTOCOL_ERROR),
]


@pytest.mark.parametrize(("code", "text", "outcome"), RCPT_REPLIES, ids=[f"{c} {t[:30]}" for c, t, _ in RCPT_REPLIES])
def test_rcpt_replies_are_classified_by_enhanced_code_then_text(code: int, text: str, outcome: Outcome) -> None:
    assert classify_rcpt(Reply(code, text)) == outcome


@given(code=st.integers(400, 499), text=st.text(max_size=80))
def test_no_temporary_reply_ever_means_the_mailbox_is_wrong(code: int, text: str) -> None:
    assert classify_rcpt(Reply(code, text)) in {Outcome.GREYLISTED, Outcome.TEMPORARY, Outcome.FULL_INBOX}


@given(detail=st.integers(0, 999), text=st.text(max_size=80))
def test_no_policy_reply_ever_means_the_mailbox_is_wrong(detail: int, text: str) -> None:
    assert classify_rcpt(Reply(554, f"5.7.{detail} {text}")) == Outcome.BLOCKED
    assert classify_rcpt(Reply(550, f"5.7.{detail} {text}")) == Outcome.BLOCKED


def test_session_level_refusals_are_about_us_not_the_mailbox() -> None:
    assert classify_session(Reply(554, "5.7.1 blocked")) == Outcome.BLOCKED
    assert classify_session(Reply(550, "5.1.0 sender rejected")) == Outcome.BLOCKED
    assert classify_session(Reply(451, "4.7.1 slow down")) == Outcome.GREYLISTED
    assert classify_session(Reply(421, "busy")) == Outcome.TEMPORARY


def test_enhanced_code_parsing() -> None:
    assert Reply(550, "5.1.1 nope").enhanced == "5.1.1"
    assert Reply(550, "5.1.10 nope").enhanced == "5.1.10"
    assert Reply(250, "OK").enhanced is None
    assert Reply(550, "4.1.1 mismatch").enhanced is None


# ---- syntax


def test_parse_normalises_domain_and_keeps_local_part() -> None:
    parsed = parse_address(" Bob.Smith@Example.COM ")
    assert isinstance(parsed, ParsedAddress)
    assert (parsed.normalized, parsed.wire_address, parsed.key) == (
        "Bob.Smith@example.com",
        "Bob.Smith@example.com",
        "bob.smith@example.com",
    )


def test_parse_internationalised_addresses() -> None:
    idn = parse_address("alice@bücher.de")
    assert isinstance(idn, ParsedAddress)
    assert (idn.domain, idn.ascii_domain, idn.smtputf8, idn.wire_address) == (
        "bücher.de",
        "xn--bcher-kva.de",
        False,
        "alice@xn--bcher-kva.de",
    )
    utf8 = parse_address("josé@example.com")
    assert isinstance(utf8, ParsedAddress) and utf8.smtputf8


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("a@b", "period"),
        ("a" * 300 + "@example.com", "too long"),
        ("x" * 5000, "characters long"),
        ("a\r\n@example.com", "U+000D"),
        ("a@exa\tmple.com", "U+0009"),
        ('"quoted"@example.com', "quoting"),
        ("a@[127.0.0.1]", "bracketed"),
        ("Alice <alice@example.com>", "display name"),
        ("a@x.test", "special-use"),
    ],
)
def test_parse_rejects_with_a_clear_message(raw: str, message: str) -> None:
    problem = parse_address(raw)
    assert isinstance(problem, SyntaxProblem)
    assert message.lower() in problem.message.lower()


@given(st.text(max_size=400))
def test_parse_never_raises_and_never_accepts_control_characters(raw: str) -> None:
    parsed = parse_address(raw)
    if isinstance(parsed, ParsedAddress):
        check_wire_safe(f"RCPT TO:<{parsed.wire_address}>")


def test_wire_check_refuses_line_breaks() -> None:
    for bad in ("RCPT TO:<a@b.c>\r\nDATA", "x\ny", "x\x00", "x\u2028y"):
        with pytest.raises(UnsafeCommand):
            check_wire_safe(bad)
    check_wire_safe("RCPT TO:<josé@example.com>")


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        ("gmial.com", "gmail.com"),
        ("gmail.con", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("yopmail.com", None),
        ("hotmial.co.uk", "hotmail.co.uk"),
        ("outlok.com", "outlook.com"),
        ("gmail.com", None),
        ("mail.com", None),
        ("acme.com", None),
        ("example.org", None),
    ],
)
def test_typo_suggestions(domain: str, suggestion: str | None) -> None:
    assert suggest_domain(domain) == suggestion


# ---- domain facts


def test_disposable_matches_parent_domains() -> None:
    assert is_disposable("mailinator.com")
    assert is_disposable("team.mailinator.com")
    assert not is_disposable("company.com")
    assert not is_disposable("com")


@pytest.mark.parametrize("local", ["admin", "info", "Sales", "no-reply", "no_reply", "support+tag", "postmaster"])
def test_role_accounts(local: str) -> None:
    assert is_role_account(local)


@pytest.mark.parametrize("local", ["alice", "j.smith", "information.officer.jane"])
def test_person_accounts(local: str) -> None:
    assert not is_role_account(local)


def test_domain_facts_free_provider() -> None:
    assert domain_facts("alice", "gmail.com").free_provider
    assert not domain_facts("alice", "acme.com").free_provider


def test_disposable_and_typo_addresses_in_the_pipeline(mailnet) -> None:  # type: ignore[no-untyped-def]
    from core.verify.pipeline import EmailVerifier

    verifier = EmailVerifier(mailnet.verifier_config())
    disposable, role = verifier.verify_many_sync(["someone@mailinator.com", "info@yopmail.com"])
    assert (disposable.status, disposable.reasons) == (EmailStatus.UNKNOWN, ("disposable",))
    assert (role.status, role.reasons) == (EmailStatus.UNKNOWN, ("disposable", "role_based"))
    assert mailnet.dns_queries == []  # decided without any network traffic


# ---- results


def test_score_bounds_and_order() -> None:
    assert score_for(EmailStatus.VERIFIED, ()) == 95
    assert score_for(EmailStatus.VERIFIED, ("role_based", "free_provider")) == 77
    assert score_for(EmailStatus.INVALID, ("role_based",)) == 0
    assert score_for(EmailStatus.UNKNOWN, ("disposable", "possible_typo", "role_based")) == 0


def test_result_round_trips_through_a_dict() -> None:
    result = EmailResult(
        email="a@b.com",
        normalized="a@b.com",
        status=EmailStatus.VERIFIED,
        reasons=("role_based",),
        score=80,
        checked_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        mx_host="mx.b.com",
        evidence=(SmtpStep("rcpt", "mx.b.com", 250, "2.1.5", "OK", 1),),
        catch_all=False,
    )
    assert EmailResult.from_dict(result.to_dict()) == result
