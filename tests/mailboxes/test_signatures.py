"""The signature parser against a corpus of real-looking signatures (and things that are not one)."""

from __future__ import annotations

import pytest

from core.mailboxes.signatures import parse_signature, signature_block

CORPUS = [
    (
        "Sounds good, see you Tuesday.\n\nBest regards,\nJane Doe\nVP of Sales | Acme Corp\n"
        "T: +1 415 555 0100\nwww.acme-corp.com\n\nOn Wed, Dec 20, 2023 at 13:37, Bob <bob@x.com> wrote:\n> hi\n"
        "> Best regards,\n> Bob Smith\n> CEO | Other Inc\n",
        "Jane Doe",
        dict(title="VP of Sales", company="Acme Corp", website="acme-corp.com", phones=["+14155550100"]),
    ),
    (
        "Thanks!\n\n-- \nKarl Meyer\nHead of Procurement\nInitech GmbH\nMobile: +49 151 23456789\n"
        "https://www.linkedin.com/in/karl-meyer-123\n",
        "Karl Meyer",
        dict(title="Head of Procurement", company="Initech GmbH", phones=["+4915123456789"],
             linkedin_url="https://www.linkedin.com/in/karl-meyer-123"),
    ),
    (
        "Please find the contract attached.\n\nKind regards,\n\nPriya Raman, Senior Account Executive at Globex\n"
        "o: (212) 555-0199 | m: (917) 555-0142\nglobex.example\n",
        "Priya Raman",
        dict(title="Senior Account Executive", company="Globex", website="globex.example",
             phones=["+12125550199", "+19175550142"]),
    ),
    (
        "Cheers,\nTom O'Brien\nFounder & CEO, Hooli\n+44 20 7946 0958\n",
        "Tom O'Brien",
        dict(title="Founder & CEO", company="Hooli", phones=["+442079460958"]),
    ),
    (
        "Ok.\n\nRegards\nAna Lima\nStark Industries\n",
        "Ana Lima",
        dict(title=None, company="Stark Industries", phones=[]),
    ),
]


@pytest.mark.parametrize(("text", "sender", "want"), CORPUS, ids=[c[1] for c in CORPUS])
def test_the_corpus_signatures_are_read(text: str, sender: str, want: dict) -> None:
    sig = parse_signature(text, sender)
    assert sig is not None
    assert sig.title == want["title"]
    assert sig.company == want["company"]
    assert [p.e164 for p in sig.phones] == want["phones"]
    if "website" in want:
        assert sig.website == want["website"]
    if "linkedin_url" in want:
        assert sig.linkedin_url == want["linkedin_url"]


def test_a_signature_under_someone_elses_name_is_not_pinned_on_the_sender() -> None:
    text = "FYI below.\n\nBest,\nJohn Smith\nCFO | Acme\n"
    assert parse_signature(text, "Jane Doe") is None


def test_quoted_history_is_never_read_as_the_senders_signature() -> None:
    text = (
        "Yes.\n\nOn Mon, Jan 1, 2024 at 9:00, Jane Doe <j@acme.test> wrote:\n> Best regards,\n> Jane Doe\n"
        "> CEO | Acme\n"
    )
    assert signature_block(text) == []
    assert parse_signature(text, "Jane Doe") is None


def test_no_signoff_means_no_block() -> None:
    assert signature_block("Just a line of text.\nAnother line with Jane Doe in it.\n") == []


def test_the_mobile_label_is_kept_with_the_number() -> None:
    sig = parse_signature("Thanks,\nMia Wong\nCTO, Initrode\nm: +1 415 555 0111\nt: +1 415 555 0122\n", "Mia Wong")
    assert sig is not None
    assert [(p.e164, p.mobile_labelled) for p in sig.phones] == [("+14155550111", True), ("+14155550122", False)]
