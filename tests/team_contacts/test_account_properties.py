"""Property: for random contacts at random companies and random account filters, paging through
`TeamAccounts.find` (any page size) yields exactly a plain Python model of the accounts (one per
company, from its first saved contact), newest first, without duplicates or gaps; `count` agrees;
an admin's assignment by filter changes exactly the accounts the filter selects. Both databases."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from core.accounts import Accounts
from core.people.contacts import NewPerson, add_person
from core.team_contacts.accounts import TA, TeamAccounts
from core.team_contacts.models import AccountFilter, AccountSelection, PageRequest
from core.team_contacts.service import P, TeamContacts
from storage.db import read_transaction, run_write
from storage.models.enums import ContactSource
from tests.team_contacts.conftest import T0

COMPANIES = [None, ("Acme", "acme.test"), ("Globex", "globex.test"), ("Acme Labs", "acmelabs.test"), ("Initech", None)]
_teams = itertools.count()


@dataclass
class Spec:
    company: int
    owner: int
    source: ContactSource
    day: int


specs = st.builds(
    Spec,
    company=st.integers(0, len(COMPANIES) - 1),
    owner=st.integers(0, 1),
    source=st.sampled_from(list(ContactSource)),
    day=st.integers(0, 3),
)
filters = st.builds(
    dict,
    owner=st.sampled_from([None, 0, 1, "none"]),
    sources=st.lists(st.sampled_from(list(ContactSource)), max_size=2, unique=True).map(tuple),
    text=st.sampled_from([None, "acme", "GLOB", "labs.test", "x", "%"]),
)


def _model(data: list[Spec], unowned: set[int]) -> list[dict]:
    """The accounts, newest saved first (ties: the later created first), from the first contact saved."""
    first: dict[int, dict] = {}
    for spec in data:
        if spec.company and spec.company not in first:
            owner = None if spec.company in unowned else spec.owner
            first[spec.company] = dict(company=spec.company, owner=owner, source=spec.source, day=spec.day,
                                       order=len(first), contacts=0)  # fmt: skip
        if spec.company:
            first[spec.company]["contacts"] += 1
    return sorted(first.values(), key=lambda a: (a["day"], a["order"]), reverse=True)


def _matches(a: dict, f: dict) -> bool:
    name, domain = COMPANIES[a["company"]]
    text = (f["text"] or "").lower()
    return all([
        f["owner"] is None or (a["owner"] is None if f["owner"] == "none" else a["owner"] == f["owner"]),
        not f["sources"] or a["source"] in f["sources"],
        not text or text in name.lower() or text in (domain or ""),
    ])  # fmt: skip


def _filter(f: dict, members: list[int]) -> AccountFilter:
    return AccountFilter(
        owner_ids=(members[f["owner"]],) if f["owner"] in (0, 1) else (),
        unowned=f["owner"] == "none",
        sources=f["sources"],
        text=f["text"],
    )


def test_account_pages_equal_a_plain_python_model(engine) -> None:
    contacts = TeamContacts(engine, Accounts(engine))
    accounts = TeamAccounts(engine, contacts)

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.lists(specs, max_size=6), f=filters, limit=st.integers(1, 3), unowned=st.sets(st.integers(1, 4)))
    def check(data, f, limit, unowned) -> None:
        n = next(_teams)
        contacts.accounts.create_team(f"acct{n}", plan="free")
        admin = contacts.accounts.add_member(f"acct{n}", f"boss@acct{n}.test", role="admin")
        members = [contacts.accounts.add_member(f"acct{n}", f"m{i}@acct{n}.test") for i in range(2)]
        company_ids: dict[int, int] = {}
        for i, spec in enumerate(data):
            company = COMPANIES[spec.company]
            person = add_person(engine, NewPerson(
                full_name=f"P{n}-{i}", company=company[0] if company else None, domain=company[1] if company else None,
            ))  # fmt: skip
            contacts.save(members[spec.owner], [person], spec.source, now=T0 + timedelta(days=spec.day))
            if company:
                with read_transaction(engine) as conn:
                    company_ids[spec.company] = conn.execute(
                        select(P.c.company_id).where(P.c.id == person)
                    ).scalar_one()
        team_id = admin.team_id
        for c in unowned & set(company_ids):
            where = (TA.c.team_id == team_id, TA.c.company_id == company_ids[c])
            run_write(
                engine, lambda conn, where=where: conn.execute(update(TA).where(*where).values(owner_member_id=None))
            )
        member_ids = [m.id for m in members]
        model = _model(data, unowned)
        expected = [(company_ids[a["company"]], a["contacts"]) for a in model if _matches(a, f)]
        got, cursor = [], None
        for _ in range(len(model) + 2):
            page = accounts.find(members[0], _filter(f, member_ids), PageRequest(limit, cursor))
            assert len(page.accounts) <= limit
            got += [(a.id, a.contacts) for a in page.accounts]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == expected
        assert accounts.count(members[0], _filter(f, member_ids)) == len(expected)
        # An admin's assignment by the same filter gives exactly those accounts to the admin.
        result = accounts.assign(admin, admin.id, AccountSelection(filter=_filter(f, member_ids)))
        assert result.matched == len(expected)
        owned = {a.id for a in accounts.find(admin, AccountFilter(owner_ids=(admin.id,)), PageRequest(200)).accounts}
        assert owned == {account_id for account_id, _ in expected}

    check()
