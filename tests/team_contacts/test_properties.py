"""Property: for random contact sets and filters, paging through `find` (any page size, any sort)
yields exactly a plain Python filter of the same data, in order, without duplicates or gaps.
Both databases."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from core.accounts import Accounts
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.team_contacts.filters import EMAIL_STATUS_RANK
from core.team_contacts.models import ContactFilter, PageRequest, Sort
from core.team_contacts.service import TC, TeamContacts
from storage.db import read_transaction, run_write
from storage.models.enums import ContactSource, EmailStatus, PhoneKind, PhoneStatus
from tests.team_contacts.conftest import T0

COMPANIES = [None, ("Acme", "acme.test"), ("Globex", "globex.test"), ("Acme Labs", "acmelabs.test")]
LINE_TYPES = ["mobile", "fixed_line", "voip"]
STORED_STATUSES = [s for s in EmailStatus if s != EmailStatus.UNAVAILABLE]
_teams = itertools.count()
_addresses = itertools.count()


@dataclass
class Spec:
    name: str
    company: int
    emails: list[EmailStatus]
    phones: list[tuple[str, PhoneStatus]]
    owner: int | None  # index into the team's members, None: unowned
    source: ContactSource
    day: int


specs = st.builds(
    Spec,
    name=st.text(alphabet="abAB ", min_size=1, max_size=5).filter(str.strip),
    company=st.integers(0, len(COMPANIES) - 1),
    emails=st.lists(st.sampled_from(STORED_STATUSES), max_size=2),
    phones=st.lists(st.tuples(st.sampled_from(LINE_TYPES), st.sampled_from(list(PhoneStatus))), max_size=2),
    owner=st.one_of(st.none(), st.integers(0, 1)),
    source=st.sampled_from(list(ContactSource)),
    day=st.integers(0, 3),
)
filters = st.builds(
    dict,
    email_statuses=st.lists(st.sampled_from(list(EmailStatus)), max_size=3, unique=True).map(tuple),
    has_phone=st.sampled_from([None, True, False]),
    line_types=st.lists(st.sampled_from(LINE_TYPES), max_size=2, unique=True).map(tuple),
    owner=st.sampled_from([None, 0, 1, "none"]),
    company=st.sampled_from([None, "acme", "ACME.TEST", "globex", "nope"]),
    saved=st.sampled_from([None, (0, 2), (1, 4), (3, 4)]),
    sources=st.lists(st.sampled_from(list(ContactSource)), max_size=2, unique=True).map(tuple),
    text=st.sampled_from([None, "a", "B", "ab", "acme", "%", "z"]),
)


def _best_status(statuses: list[EmailStatus]) -> EmailStatus:
    if not statuses:
        return EmailStatus.UNAVAILABLE
    return min(statuses, key=lambda s: (EMAIL_STATUS_RANK.index(s), statuses.index(s)))


def _matches(spec: Spec, f: dict, members: list[int]) -> bool:
    company = COMPANIES[spec.company]
    live_phones = [lt for lt, status in spec.phones if status != PhoneStatus.INVALID]
    owner = members[spec.owner] if spec.owner is not None else None
    checks = [
        not f["email_statuses"] or _best_status(spec.emails) in f["email_statuses"],
        f["has_phone"] is None or bool(live_phones) == f["has_phone"],
        not f["line_types"] or any(lt in f["line_types"] for lt in live_phones),
        f["owner"] is None or (owner is None if f["owner"] == "none" else owner == members[f["owner"]]),
        not f["company"] or (company is not None and f["company"].lower() in (company[0].lower(), company[1])),
        not f["saved"] or f["saved"][0] <= spec.day < f["saved"][1],
        not f["sources"] or spec.source in f["sources"],
        not f["text"]
        or f["text"].lower() in spec.name.strip().lower()
        or (company is not None and f["text"].lower() in company[0].lower()),
    ]
    return all(checks)


def _contact_filter(f: dict, members: list[int]) -> ContactFilter:
    saved = f["saved"]
    return ContactFilter(
        email_statuses=f["email_statuses"],
        has_phone=f["has_phone"],
        line_types=f["line_types"],
        owner_ids=(members[f["owner"]],) if f["owner"] in (0, 1) else (),
        unowned=f["owner"] == "none",
        company=f["company"],
        saved_from=T0 + timedelta(days=saved[0]) if saved else None,
        saved_to=T0 + timedelta(days=saved[1]) if saved else None,
        sources=f["sources"],
        text=f["text"],
    )


def _build(engine: Engine, contacts: TeamContacts, data: list[Spec]):
    accounts = contacts.accounts
    n = next(_teams)
    accounts.create_team(f"prop{n}", plan="free")
    members = [accounts.add_member(f"prop{n}", f"m{i}@prop{n}.test") for i in range(2)]
    ids: list[int] = []
    for spec in data:
        company = COMPANIES[spec.company]
        person = add_person(
            engine,
            NewPerson(
                full_name=spec.name,
                company=company[0] if company else None,
                domain=company[1] if company else None,
                emails=[NewEmail(f"x{next(_addresses)}@a.test", s, 50, T0) for s in spec.emails],
                phones=[NewPhone(f"+1415555{i:04d}", PhoneKind.MOBILE, s, lt) for i, (lt, s) in enumerate(spec.phones)],
            ),
        )
        member = members[spec.owner if spec.owner is not None else 0]
        contacts.save(member, [person], spec.source, now=T0 + timedelta(days=spec.day))
        with read_transaction(engine) as conn:
            ids.append(conn.execute(select(TC.c.id).where(TC.c.person_id == person)).scalar_one())
        if spec.owner is None:
            run_write(
                engine,
                lambda conn, i=ids[-1]: conn.execute(update(TC).where(TC.c.id == i).values(owner_member_id=None)),
            )
    return members, ids


def _expected_order(data: list[Spec], ids: list[int], sort: Sort) -> list[int]:
    rows = list(zip(data, ids, strict=True))
    if sort == Sort.SAVED_DESC:
        rows.sort(key=lambda r: (r[0].day, r[1]), reverse=True)
    elif sort == Sort.SAVED_ASC:
        rows.sort(key=lambda r: (r[0].day, r[1]))
    else:
        rows.sort(key=lambda r: (r[0].name.strip(), r[1]))
    return [contact_id for _, contact_id in rows]


def test_pages_equal_a_plain_python_filter(engine: Engine) -> None:
    contacts = TeamContacts(engine, Accounts(engine))

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        data=st.lists(specs, max_size=10),
        f=filters,
        sort=st.sampled_from(list(Sort)),
        limit=st.integers(1, 4),
    )
    def check(data, f, sort, limit) -> None:
        members, ids = _build(engine, contacts, data)
        member_ids = [m.id for m in members]
        by_id = dict(zip(ids, data, strict=True))
        expected = [i for i in _expected_order(data, ids, sort) if _matches(by_id[i], f, member_ids)]
        got: list[int] = []
        cursor = None
        for _ in range(len(ids) + 2):
            page = contacts.find(members[0], _contact_filter(f, member_ids), PageRequest(limit, cursor, sort))
            assert len(page.contacts) <= limit
            got += [c.id for c in page.contacts]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == expected
        assert contacts.count(members[0], _contact_filter(f, member_ids)) == len(expected)

    check()
