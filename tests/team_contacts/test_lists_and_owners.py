"""Static lists and bulk ownership, on SQLite and PostgreSQL; another team's ids are not found."""

from __future__ import annotations

import pytest

from core.accounts import AlreadyExists
from core.errors import InvalidInput, NotFound
from core.team_contacts.models import ContactFilter, PageRequest, Selection
from core.team_contacts.rules import NotPermitted
from storage.models.enums import EmailStatus


def list_names(world, ref, actor=None):
    actor = actor or world.admin
    list_id = world.lists.get(actor, ref).id
    return sorted(
        c.full_name for c in world.contacts.find(actor, ContactFilter(list_id=list_id), PageRequest(200)).contacts
    )


def test_lists_add_and_remove_by_ids_and_by_filter(world) -> None:
    created = world.lists.create(world.rep, "Q3 push")
    assert created.contacts == 0
    ids = world.contact_ids
    added = world.lists.add(world.rep, "Q3 push", Selection(contact_ids=(ids["vera"], ids["cat"])))
    assert (added.matched, added.changed) == (2, 2)
    again = world.lists.add(world.rep, created.id, Selection(filter=ContactFilter(company="initech")))
    assert (again.matched, again.changed) == (3, 1)  # Vera and Cat were there already
    assert list_names(world, "Q3 push") == ['=HYPERLINK("x")', "Cat Chall", "Vera Fied"]
    # A contact may be in many lists.
    world.lists.create(world.admin, "verified")
    world.lists.add(world.admin, "verified", Selection(filter=ContactFilter(email_statuses=(EmailStatus.VERIFIED,))))
    assert world.contacts.show(world.admin, ids["vera"]).lists == ("Q3 push", "verified")
    removed = world.lists.remove(world.rep, "Q3 push", Selection(filter=ContactFilter(text="hyperlink")))
    assert (removed.matched, removed.changed) == (1, 1)
    assert list_names(world, "Q3 push") == ["Cat Chall", "Vera Fied"]
    # Filters combine with a list.
    in_list = ContactFilter(list_id=created.id, email_statuses=(EmailStatus.ACCEPT_ALL,))
    assert [c.full_name for c in world.contacts.find(world.admin, in_list).contacts] == ["Cat Chall"]
    assert [(info.name, info.contacts) for info in world.lists.all(world.admin)] == [("Q3 push", 2), ("verified", 1)]
    assert world.contacts.count(world.admin, ContactFilter(list_id=created.id)) == 2


def test_list_names_are_checked(world) -> None:
    world.lists.create(world.rep, "Q3 push")
    with pytest.raises(AlreadyExists, match="list 'Q3 push' already exists"):
        world.lists.create(world.rep2, " Q3 push ")
    for name, message in [("", "must not be empty"), ("x" * 129, "longer than 128"), ("42", "is a number")]:
        with pytest.raises(InvalidInput, match=message):
            world.lists.create(world.rep, name)
    with pytest.raises(InvalidInput, match="name contact ids or a filter"):
        world.lists.add(world.rep, "Q3 push", Selection())
    with pytest.raises(NotFound, match="unknown list 'nope'"):
        world.lists.add(world.rep, "nope", Selection(contact_ids=(world.contact_ids["vera"],)))
    # The same name in another team is another list.
    world.lists.create(world.spy, "Q3 push")


def test_lists_and_their_contacts_are_isolated_between_teams(world) -> None:
    ours = world.lists.create(world.rep, "ours")
    world.lists.add(world.rep, "ours", Selection(contact_ids=(world.contact_ids["vera"],)))
    with pytest.raises(NotFound, match="unknown list"):
        world.lists.get(world.spy, ours.id)
    with pytest.raises(NotFound, match="unknown list"):
        world.contacts.find(world.spy, ContactFilter(list_id=ours.id))
    with pytest.raises(NotFound, match="unknown list"):
        world.lists.add(world.spy, ours.id, Selection(filter=ContactFilter()))
    world.lists.create(world.spy, "theirs")
    with pytest.raises(NotFound, match=f"unknown contact {world.contact_ids['cat']}"):
        world.lists.add(world.spy, "theirs", Selection(contact_ids=(world.contact_ids["cat"],)))
    # A filter in the spy's team never reaches acme's contacts.
    assert world.lists.add(world.spy, "theirs", Selection(filter=ContactFilter())).matched == 1
    assert list_names(world, "theirs", world.spy) == ["Vera Fied"]


def test_admins_assign_any_contact_in_bulk(world) -> None:
    result = world.contacts.assign(world.admin, "rep2@acme.test", Selection(filter=ContactFilter(company="initech")))
    assert (result.matched, result.changed) == (3, 3)
    mine = world.contacts.find(world.admin, ContactFilter(owner_ids=(world.rep2.id,)), PageRequest(200)).contacts
    assert sorted(c.full_name for c in mine) == sorted(
        ['=HYPERLINK("x")', "Cat Chall", "Vera Fied", "Mo Bile", "Lee Kely"]
    )
    # Re-assigning to the same owner changes nothing.
    again = world.contacts.assign(world.admin, world.rep2.id, Selection(contact_ids=(world.contact_ids["vera"],)))
    assert (again.matched, again.changed) == (1, 0)


def test_members_reassign_only_their_own_contacts(world) -> None:
    ids = world.contact_ids
    with pytest.raises(NotPermitted, match=f"contact {ids['mo']}: only its owner or an admin"):
        world.contacts.assign(world.rep, "rep@acme.test", Selection(contact_ids=(ids["vera"], ids["mo"])))
    assert world.contacts.show(world.admin, ids["vera"]).owner_member_id == world.rep.id  # nothing changed
    # By filter a member touches only their own: Mo and Lee (rep2's) are not taken.
    result = world.contacts.assign(world.rep, "rep2@acme.test", Selection(filter=ContactFilter()))
    assert (result.matched, result.changed) == (3, 3)
    assert world.contacts.count(world.admin, ContactFilter(owner_ids=(world.rep.id,))) == 0
    # ... and a filter naming someone else's contacts selects none.
    none = world.contacts.assign(
        world.rep, "rep@acme.test", Selection(filter=ContactFilter(owner_ids=(world.rep2.id,)))
    )
    assert none.matched == 0


def test_assignment_stays_inside_the_team(world) -> None:
    with pytest.raises(NotFound, match="unknown member 'spy@other.test'"):
        world.contacts.assign(world.admin, "spy@other.test", Selection(contact_ids=(world.contact_ids["vera"],)))
    spy_contact = world.contacts.find(world.spy).contacts[0].id
    with pytest.raises(NotFound, match=f"unknown contact {spy_contact}"):
        world.contacts.assign(world.admin, world.rep.id, Selection(contact_ids=(spy_contact,)))
    with pytest.raises(NotFound, match=f"unknown contact {world.contact_ids['vera']}"):
        world.contacts.assign(world.spy, world.spy.id, Selection(contact_ids=(world.contact_ids["vera"],)))
