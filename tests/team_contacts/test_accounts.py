"""Team accounts (the companies of a team's contacts): saved with their contacts, paged, shown,
owned and reassigned in bulk; contacts filtered by their account's owner; another team's account is
not found. Both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core.errors import AccessDenied, InvalidInput, NotFound
from core.people.company_accounts import save_accounts_of
from core.team_contacts.accounts import TeamAccounts
from core.team_contacts.models import AccountFilter, AccountSelection, ContactFilter, PageRequest
from core.team_contacts.service import P
from storage.db import run_write
from storage.models.enums import ContactSource
from tests.team_contacts.conftest import T0, _person


@pytest.fixture
def accounts(world) -> TeamAccounts:
    return TeamAccounts(world.engine, world.contacts)


def account_id(world, key: str) -> int:
    return world.contacts.show(world.admin, world.contact_ids[key]).account_id


def test_accounts_carry_the_first_contacts_owner_source_and_date(world, accounts) -> None:
    page = accounts.find(world.admin)
    got = [(a.name, a.owner_email, a.source, a.saved_at, a.contacts) for a in page.accounts]
    assert got == [
        ("Umbrella", "boss@acme.test", ContactSource.CRM, T0 + timedelta(days=4), 1),
        ("Globex", "rep2@acme.test", ContactSource.SHEETS, T0 + timedelta(days=2), 2),
        ("Initech", "rep@acme.test", ContactSource.SLACK, T0, 3),
    ]
    assert page.next_cursor is None
    assert accounts.show(world.rep, account_id(world, "mo")).name == "Globex"
    # Pages of one: each account once, in order, then no cursor.
    seen, cursor = [], None
    for _ in range(5):
        one = accounts.find(world.rep, page=PageRequest(1, cursor))
        seen += [a.name for a in one.accounts]
        cursor = one.next_cursor
        if cursor is None:
            break
    assert seen == ["Umbrella", "Globex", "Initech"]


def test_account_filters(world, accounts) -> None:
    def names(f: AccountFilter) -> list[str]:
        return [a.name for a in accounts.find(world.admin, f).accounts]

    assert names(AccountFilter(owner_ids=(world.rep2.id,))) == ["Globex"]
    assert names(AccountFilter(sources=(ContactSource.CRM, ContactSource.SLACK))) == ["Umbrella", "Initech"]
    assert names(AccountFilter(text="GLOB")) == ["Globex"]
    assert names(AccountFilter(text="umbrella.test")) == ["Umbrella"]
    assert names(AccountFilter(unowned=True)) == []
    assert accounts.count(world.admin, AccountFilter(text="e")) == 3
    f = accounts.filter_from_words(world.rep, ["owner:@me", "source:slack", "ini"])
    assert f == AccountFilter(owner_ids=(world.rep.id,), sources=(ContactSource.SLACK,), text="ini")
    with pytest.raises(InvalidInput, match="accounts: filter words are"):
        accounts.filter_from_words(world.rep, ["status:verified"])


def test_bulk_assignment_follows_the_actor_rule(world, accounts) -> None:
    initech, globex, umbrella = (account_id(world, k) for k in ("vera", "mo", "nobody"))
    # A member gives their own account; not someone else's (nothing changes then).
    assert accounts.assign(world.rep, "rep2@acme.test", AccountSelection(account_ids=(initech,))).changed == 1
    with pytest.raises(AccessDenied, match=f"account {globex}: only its owner or an admin"):
        accounts.assign(world.rep, "rep@acme.test", AccountSelection(account_ids=(globex, umbrella)))
    assert accounts.show(world.admin, globex).owner_email == "rep2@acme.test"
    # A member's filter reaches only their own accounts.
    everything = AccountSelection(filter=AccountFilter())
    assert accounts.assign(world.rep2, "rep@acme.test", everything).matched == 2  # Globex and Initech
    # An admin reassigns by filter; the contacts keep their own owners.
    result = accounts.assign(
        world.admin, world.rep2.id, AccountSelection(filter=AccountFilter(owner_ids=(world.rep.id,)))
    )
    assert (result.matched, result.changed) == (2, 2)
    assert accounts.assign(world.admin, world.rep2.id, everything).changed == 1  # only Umbrella was not rep2's
    assert world.contacts.show(world.admin, world.contact_ids["vera"]).owner_email == "rep@acme.test"
    with pytest.raises(InvalidInput, match="one of them"):
        accounts.assign(world.admin, "rep@acme.test", AccountSelection())
    with pytest.raises(NotFound):
        accounts.assign(world.admin, "spy@other.test", everything)  # not a member of acme


def test_contacts_filtered_by_their_accounts_owner(world, accounts) -> None:
    globex = account_id(world, "mo")
    accounts.assign(world.admin, "rep@acme.test", AccountSelection(account_ids=(globex,)))
    mine = ContactFilter(account_owner_ids=(world.rep.id,))
    names = sorted(c.full_name for c in world.contacts.find(world.admin, mine).contacts)
    assert names == ['=HYPERLINK("x")', "Cat Chall", "Lee Kely", "Mo Bile", "Vera Fied"]
    words = world.contacts.filter_from_words(world.rep2, ["account-owner:@me"])
    assert words == ContactFilter(account_owner_ids=(world.rep2.id,))
    assert world.contacts.find(world.rep2, words).contacts == []
    assert world.contacts.count(world.admin, ContactFilter(account_owner_ids=(world.admin.id,))) == 1


def test_another_teams_account_is_not_found(world, accounts) -> None:
    globex, initech = account_id(world, "mo"), account_id(world, "vera")
    with pytest.raises(NotFound, match=f"unknown account {globex}"):
        accounts.show(world.spy, globex)
    with pytest.raises(NotFound, match=f"unknown account {globex}"):
        accounts.assign(world.spy, "spy@other.test", AccountSelection(account_ids=(globex,)))
    # The other team saved Vera too: Initech is an account of its own, with its own owner.
    theirs = accounts.show(world.spy, initech)
    assert (theirs.owner_email, theirs.contacts) == ("spy@other.test", 1)
    assert [a.name for a in accounts.find(world.spy).accounts] == ["Initech"]
    accounts.assign(world.admin, "rep2@acme.test", AccountSelection(filter=AccountFilter()))
    assert accounts.show(world.spy, initech).owner_email == "spy@other.test"


def test_a_contact_moving_company_brings_its_new_account(world, accounts) -> None:
    hooli = _person(world.engine, "Someone Else", company="Hooli", domain="hooli.test")

    def move(conn) -> None:
        conn.execute(update(P).where(P.c.id == world.people["cat"]).values(company_id=_company_of(conn, hooli)))
        save_accounts_of(conn, [world.people["cat"]], T0 + timedelta(days=9))

    run_write(world.engine, move)
    moved = accounts.find(world.admin).accounts[0]
    assert (moved.name, moved.owner_email, moved.source, moved.contacts) == ("Hooli", "rep@acme.test", "csv", 1)
    assert [a.name for a in accounts.find(world.spy).accounts] == ["Initech"]  # the spy never saved Cat


def _company_of(conn, person_id: int) -> int:
    from sqlalchemy import select

    return conn.execute(select(P.c.company_id).where(P.c.id == person_id)).scalar_one()
