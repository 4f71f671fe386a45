"""Finding a team's contacts: every filter, sorts, keyset pages, live statuses, team isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.errors import InvalidInput, NotFound
from core.people.contacts import NewPerson, add_person
from core.team_contacts.filters import parse_filter_words
from core.team_contacts.models import MAX_PAGE_SIZE, ContactFilter, PageRequest, Sort
from storage.db import run_write
from storage.models.enums import ContactSource, EmailStatus
from tests.team_contacts.conftest import T0


def names(world, f=ContactFilter(), actor=None, sort=Sort.SAVED_ASC):
    page = world.contacts.find(actor or world.admin, f, PageRequest(limit=MAX_PAGE_SIZE, sort=sort))
    return [c.full_name for c in page.contacts]


ALL = ["Vera Fied", "Cat Chall", "Mo Bile", "Lee Kely", "No Body", '=HYPERLINK("x")']


def test_a_team_sees_its_contacts_newest_first_with_live_statuses(world) -> None:
    page = world.contacts.find(world.admin)
    assert [c.full_name for c in page.contacts] == list(reversed(ALL)) and page.next_cursor is None
    vera = world.contacts.show(world.admin, world.contact_ids["vera"])
    assert (vera.email, vera.email_status, vera.owner_email, vera.source) == (
        "vera@initech.test", EmailStatus.VERIFIED, "rep@acme.test", ContactSource.SLACK)  # fmt: skip
    assert vera.company == "Initech" and vera.domain == "initech.test" and vera.saved_at == T0
    assert [p.e164 for p in vera.phones] == ["+14155550100"]
    assert world.contacts.show(world.admin, world.contact_ids["nobody"]).email_status == EmailStatus.UNAVAILABLE


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (ContactFilter(email_statuses=(EmailStatus.VERIFIED,)), ["Vera Fied"]),
        (ContactFilter(email_statuses=(EmailStatus.VERIFIED, EmailStatus.LIKELY_TO_ENGAGE)), ["Vera Fied", "Lee Kely"]),
        (ContactFilter(email_statuses=(EmailStatus.ACCEPT_ALL,)), ["Cat Chall"]),
        (ContactFilter(email_statuses=(EmailStatus.UNAVAILABLE,)), ["Mo Bile", "No Body"]),
        (ContactFilter(email_statuses=(EmailStatus.INVALID,)), ['=HYPERLINK("x")']),
        (ContactFilter(email_statuses=(EmailStatus.UNVERIFIED, EmailStatus.UPDATE_REQUIRED)), []),
        (ContactFilter(has_phone=True), ["Vera Fied", "Mo Bile"]),  # an invalid number is no phone
        (ContactFilter(has_phone=False), ["Cat Chall", "Lee Kely", "No Body", '=HYPERLINK("x")']),
        (ContactFilter(line_types=("mobile",)), ["Mo Bile"]),
        (ContactFilter(line_types=("fixed_line", "mobile")), ["Vera Fied", "Mo Bile"]),
        (ContactFilter(company="GLOBEX"), ["Mo Bile", "Lee Kely"]),
        (ContactFilter(company="umbrella.test"), ["No Body"]),
        (ContactFilter(sources=(ContactSource.SLACK,)), ["Vera Fied", '=HYPERLINK("x")']),
        (ContactFilter(sources=(ContactSource.CRM, ContactSource.API)), ["Lee Kely", "No Body"]),
        (ContactFilter(saved_from=T0 + timedelta(days=1), saved_to=T0 + timedelta(days=3)), ["Cat Chall", "Mo Bile"]),
        (ContactFilter(text="bo"), ["No Body"]),
        (ContactFilter(text="INITECH"), ["Vera Fied", "Cat Chall", '=HYPERLINK("x")']),
        (ContactFilter(text="%"), []),  # LIKE wildcards are plain characters
        (ContactFilter(text="y"), ["Lee Kely", "No Body", '=HYPERLINK("x")']),
        (ContactFilter(has_phone=True, company="initech"), ["Vera Fied"]),
    ],
)
def test_each_filter(world, f, expected) -> None:
    assert names(world, f) == expected


def test_owner_account_and_unowned_filters(world) -> None:
    assert names(world, ContactFilter(owner_ids=(world.rep.id,))) == ["Vera Fied", "Cat Chall", '=HYPERLINK("x")']
    assert names(world, ContactFilter(owner_ids=(world.rep.id, world.rep2.id))) == [n for n in ALL if n != "No Body"]
    globex = world.contacts.show(world.admin, world.contact_ids["mo"]).account_id
    assert names(world, ContactFilter(account_id=globex)) == ["Mo Bile", "Lee Kely"]
    assert names(world, ContactFilter(unowned=True)) == []


def test_sort_by_name(world) -> None:
    assert names(world, sort=Sort.NAME) == sorted(ALL)


def test_pages_follow_each_other_without_gaps_even_while_contacts_are_added(world) -> None:
    seen = []
    page = world.contacts.find(world.admin, page=PageRequest(limit=2))
    seen += [c.full_name for c in page.contacts]
    # New contacts saved between pages (newest first: they sort before the cursor) change nothing.
    newcomer = add_person(world.engine, NewPerson(full_name="New Comer"))
    world.contacts.save(world.rep, [newcomer], ContactSource.CSV)
    while page.next_cursor:
        page = world.contacts.find(world.admin, page=PageRequest(limit=2, cursor=page.next_cursor))
        seen += [c.full_name for c in page.contacts]
    assert seen == list(reversed(ALL))


def test_a_cursor_is_bound_to_its_filter_and_checked(world) -> None:
    page = world.contacts.find(world.admin, page=PageRequest(limit=1))
    with pytest.raises(InvalidInput, match="cursor: it belongs to another filter"):
        world.contacts.find(world.admin, ContactFilter(text="a"), PageRequest(limit=1, cursor=page.next_cursor))
    for bad in ("nonsense", "eyJmIjoxfQ", ""):
        if bad:
            with pytest.raises(InvalidInput, match="cursor"):
                world.contacts.find(world.admin, page=PageRequest(cursor=bad))
    with pytest.raises(InvalidInput, match="limit"):
        world.contacts.find(world.admin, page=PageRequest(limit=MAX_PAGE_SIZE + 1))
    with pytest.raises(InvalidInput, match="text"):
        world.contacts.find(world.admin, ContactFilter(text="x" * 201))


def test_a_bounce_moves_a_contact_out_of_verified_at_once(world) -> None:
    from core.bounces.status_downgrade import downgrade_after_hard_bounce

    verified = ContactFilter(email_statuses=(EmailStatus.VERIFIED,))
    assert names(world, verified) == ["Vera Fied"]
    run_write(world.engine, lambda conn: downgrade_after_hard_bounce(conn, "vera@initech.test", "user_unknown", T0))
    assert names(world, verified) == []
    assert names(world, ContactFilter(email_statuses=(EmailStatus.UPDATE_REQUIRED,))) == ["Vera Fied"]
    assert world.contacts.show(world.rep, world.contact_ids["vera"]).email_status == EmailStatus.UPDATE_REQUIRED


def test_another_teams_contacts_are_not_found(world) -> None:
    spy_page = world.contacts.find(world.spy)
    assert [c.full_name for c in spy_page.contacts] == ["Vera Fied"]
    for contact_id in world.contact_ids.values():
        with pytest.raises(NotFound, match=f"unknown contact {contact_id}"):
            world.contacts.show(world.spy, contact_id)
    spy_vera = spy_page.contacts[0].id
    with pytest.raises(NotFound):
        world.contacts.show(world.admin, spy_vera)


def test_filter_words(world) -> None:
    def member_id(ref: str) -> int:
        return world.accounts.member(ref, world.admin.team_id).id

    f = parse_filter_words(
        ["status:verified,likely_to_engage", "owner:@me", "phone:yes", "source:slack", "vera", "fied"],
        me_id=world.rep.id,
        member_id=member_id,
    )
    assert f.email_statuses == (EmailStatus.VERIFIED, EmailStatus.LIKELY_TO_ENGAGE)
    assert f.owner_ids == (world.rep.id,) and f.has_phone is True and f.text == "vera fied"
    assert names(world, f) == ["Vera Fied"]
    assert parse_filter_words(["owner:rep2@acme.test"], me_id=1, member_id=member_id).owner_ids == (world.rep2.id,)
    for words, message in [
        (["status:great"], "status: 'great' is not one of"),
        (["phone:maybe"], "phone: 'maybe' is not yes or no"),
        (["source:fax"], "source: 'fax' is not one of"),
        (["saved-from:yesterday"], "saved-from: 'yesterday' is not a date"),
        (["status:"], "status: needs a value"),
        (["saved-from:2026-02-01", "saved-to:2026-01-01"], "saved: the start must be before the end"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            parse_filter_words(words, me_id=1, member_id=member_id)
    with pytest.raises(NotFound):
        parse_filter_words(["owner:spy@other.test"], me_id=1, member_id=member_id)
