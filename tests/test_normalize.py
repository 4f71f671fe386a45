"""Normalisation: names, companies, domains (offline tldextract), LinkedIn URLs, emails, phones."""

import socket

import pytest
import tldextract

from core.errors import InvalidInput
from core.normalize import (
    ContactQuery,
    canonical_linkedin_url,
    company_key,
    fold,
    normalize_contact,
    normalize_email,
    normalize_phone,
    parse_name,
    registrable_domain,
)
from core.normalize import domains as domains_module
from core.people.resolve import canonical_linkedin_url as people_canonical_linkedin_url


def test_unicode_folding_makes_accented_and_plain_names_equal() -> None:
    assert fold("José Müller") == fold("JOSE MULLER") == "jose muller"
    assert fold("Søren Łukasz Straße") == "soren lukasz strasse"
    assert fold("  O'Brien-Smith ") == "o brien smith"


def test_parse_name_extracts_first_and_last() -> None:
    name = parse_name("Dr. José Müller Jr.")
    assert (name.first_name, name.last_name, name.first_key, name.last_key) == ("José", "Müller", "jose", "muller")
    assert parse_name("Doe, Jane").full_key == "jane doe"
    explicit = parse_name("Someone Else", first_name="Jane", last_name="Doe")
    assert (explicit.first_name, explicit.last_name) == ("Jane", "Doe")
    joined = parse_name(None, "Ana", "Lima")
    assert joined.full_name == "Ana Lima"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME Incorporated", "acme"),
        ("Acme LLC", "acme"),
        ("Acme Ltd", "acme"),
        ("Müller GmbH & Co. KG", "muller"),
        ("Société Générale S.A.", "societe generale"),
        ("Acme Pty Ltd", "acme"),
        ("The Acme Company", "acme"),
        ("Smith & Co", "smith"),
        ("Inc", "inc"),
        ("", ""),
    ],
)
def test_company_key_strips_legal_suffixes_case_and_punctuation(raw: str, key: str) -> None:
    assert company_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://www.Acme.co.uk/about?x=1", "acme.co.uk"),
        ("shop.acme.com", "acme.com"),
        ("ACME.COM.", "acme.com"),
        ("http://user@acme.com:8080/path", "acme.com"),
        ("jane@mail.acme.io", "acme.io"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("acme.test", "acme.test"),
    ],
)
def test_registrable_domain(raw: str, domain: str) -> None:
    assert registrable_domain(raw) == domain


@pytest.mark.parametrize("raw", ["192.168.0.1", "http://[::1]/", "co.uk", "localhost", "nodots"])
def test_registrable_domain_refuses_what_is_not_a_domain(raw: str) -> None:
    with pytest.raises(InvalidInput, match="domain"):
        registrable_domain(raw)


def test_tldextract_is_built_offline_without_a_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    extractor = domains_module._EXTRACT
    assert extractor.suffix_list_urls == ()
    assert extractor._cache.enabled is False
    # A fresh extractor built the same way answers with every socket refused.
    def no_network(*args, **kwargs):
        raise AssertionError("tldextract tried the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    fresh = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    assert fresh("https://a.b.example.co.uk").top_domain_under_public_suffix == "example.co.uk"


@pytest.mark.parametrize(
    "raw",
    [
        "linkedin.com/in/JaneDoe",
        "https://www.linkedin.com/in/janedoe/",
        "http://uk.linkedin.com/in/janedoe?trk=abc",
        "https://m.linkedin.com/in/janedoe#x",
        "https://www.linkedin.com/in/%6Aanedoe/details/",
    ],
)
def test_linkedin_urls_have_one_canonical_form(raw: str) -> None:
    assert canonical_linkedin_url(raw) == "https://www.linkedin.com/in/janedoe"
    # core/people/resolve.py uses the same function.
    assert people_canonical_linkedin_url(raw) == "https://www.linkedin.com/in/janedoe"


@pytest.mark.parametrize("raw", ["https://www.linkedin.com/company/acme", "https://example.com/in/jane", "janedoe"])
def test_non_profile_urls_are_not_linkedin_profiles(raw: str) -> None:
    assert canonical_linkedin_url(raw) is None


def test_emails_are_lower_cased_and_classified() -> None:
    business = normalize_email("  Jane.Doe@ACME.com ")
    assert business.address == "jane.doe@acme.com" and business.business
    assert normalize_email("jane@gmail.com").free_provider
    assert not normalize_email("jane@gmail.com").business
    assert normalize_email("info@acme.com").role_account
    with pytest.raises(InvalidInput, match="email: 'not-an-email' is not a valid address"):
        normalize_email("not-an-email")


def test_phones_come_out_in_e164() -> None:
    assert normalize_phone("+44 20 7946 0958").e164 == "+442079460958"
    assert normalize_phone("(415) 555-0100", "US").e164 == "+14155550100"
    with pytest.raises(InvalidInput, match="phone"):
        normalize_phone("555-0100")  # no country: unknown, never guessed


def test_normalize_contact_takes_domain_from_website_or_business_email() -> None:
    c = normalize_contact(ContactQuery(full_name="José Müller", email="JOSE@Acme.com", company="Acme, Inc."))
    assert (c.first_key, c.last_key, c.domain, c.company_key) == ("jose", "muller", "acme.com", "acme")
    personal = normalize_contact(ContactQuery(full_name="José Müller", email="jose@gmail.com"))
    assert personal.domain is None and personal.business_email is None


def test_bad_records_say_which_field() -> None:
    with pytest.raises(InvalidInput, match="empty record"):
        normalize_contact(ContactQuery())
    with pytest.raises(InvalidInput, match="empty record"):
        normalize_contact(ContactQuery(full_name="   ", company="\t"))
    with pytest.raises(InvalidInput, match=r"^title: 10000 characters, at most 255 allowed$"):
        normalize_contact(ContactQuery(full_name="Jane Doe", title="x" * 10_000))
    with pytest.raises(InvalidInput, match="^linkedin_url:"):
        normalize_contact(ContactQuery(full_name="Jane Doe", linkedin_url="https://example.com/jane"))
    with pytest.raises(InvalidInput, match="^domain:"):
        normalize_contact(ContactQuery(full_name="Jane Doe", domain="10.0.0.1"))


def test_demo_world_test_domains_are_accepted() -> None:
    assert normalize_email("Jane.Doe@acme.test").address == "jane.doe@acme.test"
    assert normalize_contact(ContactQuery(email="jane.doe@acme.test")).domain == "acme.test"


def test_fold_is_the_same_for_short_cached_texts_and_long_ones() -> None:
    """Short texts (names, companies) are folded once and remembered; longer ones every time: alike."""
    from core.normalize.text import FOLD_CACHE_MAX_CHARS, fold

    short = "José  MÜLLER, Ltd."
    assert fold(short) == fold(short) == "jose muller ltd"
    long_text = (short + " ") * (FOLD_CACHE_MAX_CHARS // len(short) + 1)
    assert len(long_text) > FOLD_CACHE_MAX_CHARS
    assert fold(long_text) == " ".join(["jose muller ltd"] * (FOLD_CACHE_MAX_CHARS // len(short) + 1))
