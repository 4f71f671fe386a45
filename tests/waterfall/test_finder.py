"""The email finder: pattern learning and candidate order (pure), then finding on the loopback mail
internet (tests/mailnet) through the stored verifier, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from core.finder.finder import EmailFinder
from core.finder.learning import KnownAddress, candidates, learn, learn_domain
from core.finder.name_parts import NameTokens, address_tokens
from core.finder.verification import stored_verify_batch
from core.people.contacts import NewEmail, NewPerson, add_person
from core.people.resolve import resolve_person
from core.sources.pattern_finder import PatternFinderSource
from core.verify.pipeline import EmailVerifier
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow
from tests.mailnet import Mailbox, MailNet

# ---- names and patterns (no database)


@pytest.mark.parametrize(
    ("first", "last", "full", "expected"),
    [
        ("José", "Álvarez", None, ("jose", "alvarez")),
        ("Mary-Jane", "O'Brien", None, ("maryjane", "obrien")),
        (None, None, "Dr. Jan van der Berg", ("jan", "vanderberg")),
        ("Jürgen", "Weiß", None, ("jurgen", "weiss")),
        ("Zoë", None, "Zoë Saldaña", ("zoe", "saldana")),
        (None, None, "Cher", None),
        ("李", "小龙", None, None),  # nothing an address could be built from
    ],
)
def test_names_fold_to_address_tokens(first, last, full, expected) -> None:
    tokens = address_tokens(first, last, full)
    assert (None if tokens is None else (tokens.first, tokens.last)) == expected


def known(address: str, first: str, last: str) -> KnownAddress:
    return KnownAddress(address, first, last, f"{first} {last}")


def test_learning_counts_each_pattern_and_ignores_what_names_do_not_explain() -> None:
    learned = learn(
        "acme.test",
        [
            known("jdoe@acme.test", "John", "Doe"),
            known("asmith@acme.test", "Ann", "Smith"),
            known("bob.lee@acme.test", "Bob", "Lee"),
            known("info@acme.test", "Nina", "Park"),  # a role address: says nothing about names
            known("x.y@other.test", "X", "Y"),  # another domain
        ],
    )
    assert learned.examples == 3
    assert learned.learned == (("{f}{last}", 2.0), ("{first}.{last}", 1.0))


def test_candidates_come_in_learned_order_then_global_priors_without_duplicates() -> None:
    learned = learn("acme.test", [known("jdoe@acme.test", "John", "Doe"), known("kim.l@acme.test", "Kim", "Lo")])
    ranked = candidates(NameTokens("jane", "roe"), "Acme.Test", learned, limit=6)
    # Learned first (ties broken by the prior), then the priors: first.last, first, firstlast...
    assert [c.address for c in ranked] == [
        "jroe@acme.test",
        "jane.r@acme.test",
        "jane.roe@acme.test",
        "jane@acme.test",
        "janeroe@acme.test",
        "jane_roe@acme.test",
    ]
    assert ranked[0].pattern == "{f}{last}" and ranked[0].learned_weight == 1.0
    # Nothing learned: the global priors alone; single letters make patterns coincide, kept once.
    plain = candidates(NameTokens("al", "l"), "x.test", learn("x.test", []), limit=20)
    addresses = [c.address for c in plain]
    assert addresses[:4] == ["al.l@x.test", "al@x.test", "all@x.test", "al_l@x.test"]
    assert len(addresses) == len(set(addresses)) and "all@x.test" not in addresses[3:]


def test_an_ambiguous_example_splits_its_weight() -> None:
    # "Al L" -> "all" is both {first}{last} and {first}{l}.
    learned = learn("x.test", [known("all@x.test", "Al", "L")])
    assert dict(learned.learned) == {"{first}{last}": 0.5, "{first}{l}": 0.5}


# ---- on the mail harness, with the database


@pytest.fixture(scope="module")
def mailnet() -> Iterator[MailNet]:
    net = MailNet()
    net.add_domain("dots.test", mailboxes=["ann.lee", "bob.stone", "jane.doe", "jose.obriensmith"])
    net.add_domain("flast.test", mailboxes=["bstone", "alee", "jdoe"])
    net.add_domain("catchall.test", mailboxes=["ann.lee"], accept_all=True)
    net.add_domain("nobody.test", mailboxes={"gone": Mailbox.DISABLED})
    net.add_domain("blocked.test", mailboxes=["jane.doe"], block_sender=True)
    with net:
        yield net


def _person(engine: Engine, name: str, domain: str, emails: list[str] = ()) -> int:
    first, last = name.split(" ", 1)
    return add_person(
        engine,
        NewPerson(
            full_name=name,
            first_name=first,
            last_name=last,
            company=domain.split(".")[0].title(),
            domain=domain,
            emails=[NewEmail(e, EmailStatus.VERIFIED, 95, utcnow()) for e in emails],
        ),
    )


@pytest.fixture
def finder(engine: Engine, mailnet: MailNet) -> EmailFinder:
    verifier = EmailVerifier(mailnet.verifier_config())
    return EmailFinder(engine, stored_verify_batch(engine, verifier), max_candidates=6, batch_size=3)


def _probed(mailnet: MailNet, domain: str, since: int) -> list[str]:
    return [rcpt for _, rcpt in mailnet.rcpt_log[since:] if rcpt.endswith("@" + domain)]


def test_learns_from_the_domains_verified_emails_in_the_database(engine: Engine, finder: EmailFinder) -> None:
    _person(engine, "Bob Stone", "flast.test", ["bstone@flast.test"])
    _person(engine, "Ann Lee", "flast.test", ["alee@flast.test"])
    learned = learn_domain(engine, "flast.test")
    assert learned.examples == 2 and learned.learned[0] == ("{f}{last}", 2.0)


def test_finds_the_learned_pattern_first_and_stops_at_the_first_verified(
    engine: Engine, finder: EmailFinder, mailnet: MailNet
) -> None:
    _person(engine, "Bob Stone", "flast.test", ["bstone@flast.test"])
    _person(engine, "Ann Lee", "flast.test", ["alee@flast.test"])
    jane = resolve_person(engine, _person(engine, "Jane Doe", "flast.test"))
    since = len(mailnet.rcpt_log)
    found = finder.find(jane)
    assert found is not None
    assert (found.address, found.status, found.pattern) == ("jdoe@flast.test", EmailStatus.VERIFIED, "{f}{last}")
    probed = _probed(mailnet, "flast.test", since)
    # Only the first batch (3 candidates, plus the verifier's catch-all probe) reached the server.
    assert "jdoe@flast.test" in probed and len({p for p in probed if "jane" in p or "doe" in p}) <= 3


def test_without_learned_patterns_the_priors_find_first_dot_last_with_folded_names(
    engine: Engine, finder: EmailFinder
) -> None:
    jose = resolve_person(engine, _person(engine, "José O'Brien-Smith", "dots.test"))
    found = PatternFinderSource(finder).find_email(jose)
    assert found is not None
    assert (found.address, found.status, found.source) == (
        "jose.obriensmith@dots.test",
        EmailStatus.VERIFIED,
        "pattern",
    )
    assert found.chargeable and found.checked_at is not None


def test_catch_all_domain_returns_the_best_candidate_as_accept_all(engine: Engine, finder: EmailFinder) -> None:
    jane = resolve_person(engine, _person(engine, "Jane Doe", "catchall.test"))
    found = PatternFinderSource(finder).find_email(jane)
    assert found is not None
    assert (found.address, found.status) == ("jane.doe@catchall.test", EmailStatus.ACCEPT_ALL)
    assert not found.chargeable


def test_rejected_candidates_lead_to_the_next_batch_then_nothing(
    engine: Engine, finder: EmailFinder, mailnet: MailNet
) -> None:
    jane = resolve_person(engine, _person(engine, "Jane Doe", "nobody.test"))
    since = len(mailnet.rcpt_log)
    assert finder.find(jane) is None
    probed = set(_probed(mailnet, "nobody.test", since))
    assert {c.address for c in finder.candidates(jane)} <= probed  # all 6 candidates, in 2 batches


def test_a_domain_that_will_not_answer_stops_after_one_batch(engine: Engine, finder: EmailFinder) -> None:
    calls: list[list[str]] = []
    inner = finder.verify_batch

    def spy(addresses):
        calls.append(list(addresses))
        return inner(addresses)

    finder.verify_batch = spy
    jane = resolve_person(engine, _person(engine, "Jane Doe", "blocked.test"))
    assert finder.find(jane) is None
    assert len(calls) == 1 and len(calls[0]) == 3


def test_a_person_without_a_domain_or_usable_name_has_no_candidates(engine: Engine, finder: EmailFinder) -> None:
    pid = add_person(engine, NewPerson(full_name="Cher"))
    assert finder.candidates(resolve_person(engine, pid)) == []
    assert finder.find(resolve_person(engine, pid)) is None
