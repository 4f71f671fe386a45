"""Privacy properties of every inflow (hypothesis): for any mix of CSV uploads and mailbox facts from
any teams, opted in or out, and any disconnects:
- no shared row names a team (or a member), and shared tables have only allowlisted columns;
- nothing outside the business fields (notes, deal values, subjects, bodies) reaches a shared table;
- what only an opted-out team or member supplied never reaches a shared table;
- a disconnect leaves nothing that only that mailbox supplied in the team's private records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.contributions import ContactQuery
from core.mailboxes.revoke import mailbox_source
from storage.models import (
    CandidateSource,
    Company,
    CompanyNameKey,
    ContactCandidate,
    ContributionObservation,
    DomainEmailProvider,
    EmailAddress,
    Person,
    PersonNameKey,
    Phone,
)
from storage.models.contributor import SourceKind
from tests.mailboxes.helpers import OPERATOR, rows, services_for, text_of_every_table

NOTE_SENTINEL = "NOTESENTINEL"
SUBJECT_SENTINEL = "SUBJSENTINEL"
BODY_SENTINEL = "BODYSENTINEL"
TEAMS = 3
PEOPLE = 4
SHARED_TABLES = (Person, Company, EmailAddress, Phone, ContributionObservation, PersonNameKey, CompanyNameKey,
                 DomainEmailProvider)
# Every column a shared table may have: business fields, keys, statuses, dates, contributor fingerprints.
ALLOWED_SHARED_COLUMNS = {
    "person": {"id", "first_name", "last_name", "full_name", "title", "company_id", "linkedin_url", "location",
               "updated_at"},
    "company": {"id", "name", "domain", "country_code", "created_at"},
    "email_address": {"id", "person_id", "address", "status", "score", "reasons", "checked_at", "created_at"},
    "phone": {"id", "person_id", "e164", "kind", "line_type", "status", "checked_at", "created_at"},
    "contribution_observation": {"id", "person_id", "value_kind", "value", "source_kind", "contributor",
                                 "first_seen_on", "last_seen_on"},
    "person_name_key": {"person_id", "first_key", "last_key", "full_key"},
    "company_name_key": {"company_id", "name_key"},
    "domain_email_provider": {"domain", "provider", "evidence", "first_seen_on", "last_seen_on"},
}


@dataclass(frozen=True)
class Inflow:
    team: int
    mailbox: bool  # else a CSV upload
    person: int
    title: bool
    phone: bool


inflows = st.lists(
    st.builds(Inflow, st.integers(0, TEAMS - 1), st.booleans(), st.integers(0, PEOPLE - 1), st.booleans(),
              st.booleans()),
    min_size=1,
    max_size=10,
)


def _person(tag: str, i: int) -> dict:
    domain = f"co{i % 2}-{tag}.test"
    return dict(full_name=f"Pat Person{i}x", email=f"pat{i}@{domain}", company=f"Co{i % 2} {tag}", domain=domain,
                title=f"Director {i}", phone=f"+1415555{i:04d}")


def _message(p: dict, inflow: Inflow) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{p['full_name']} <{p['email']}>"
    msg["To"] = "owner@home.test"
    msg["Subject"] = f"{SUBJECT_SENTINEL} renewal"
    lines = ["Best regards,", p["full_name"]]
    if inflow.title:
        lines.append(f"{p['title']} | {p['company']}")
    if inflow.phone:
        lines.append(f"T: {p['phone']}")
    msg.set_content(f"{BODY_SENTINEL} the price is 99\n\n" + "\n".join(lines) + "\n")
    return bytes(msg)


def _csv_record(p: dict, inflow: Inflow) -> ContactQuery:
    values = {"full_name": p["full_name"], "email": p["email"], "company": p["company"],
              "notes": f"{NOTE_SENTINEL} owes us", "deal_value": NOTE_SENTINEL}
    if inflow.title:
        values["title"] = p["title"]
    if inflow.phone:
        values["phone"] = p["phone"]
    return ContactQuery.from_mapping(values)


def test_privacy_holds_for_any_mix_of_inflows(engine, db_url, tmp_path) -> None:
    svc = services_for(engine, db_url, tmp_path)
    sync = svc.mailbox_sync()

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inflows, st.lists(st.booleans(), min_size=TEAMS, max_size=TEAMS),
           st.lists(st.booleans(), min_size=TEAMS, max_size=TEAMS), st.integers(0, TEAMS - 1))
    def check(events: list[Inflow], team_in: list[bool], member_in: list[bool], disconnecting: int) -> None:
        tag = uuid.uuid4().hex[:8]
        names = [f"t{i}-{tag}" for i in range(TEAMS)]
        members = [f"m{i}@home-{tag}.test" for i in range(TEAMS)]
        for i in range(TEAMS):
            svc.accounts.create_team(names[i], plan="free", contribute=team_in[i])
            svc.accounts.add_member(names[i], members[i])
            svc.mailboxes.connect(OPERATOR, names[i], members[i], _account(), check_login=False)
            svc.mailboxes.set_contribute(OPERATOR, names[i], members[i], member_in[i])
        allowed: set[str] = set()
        for e in events:
            p = _person(tag, e.person)
            if e.mailbox:
                sync.ingest_messages(names[e.team], members[e.team], [_message(p, e)])
            else:
                svc.contributions.contribute(svc.accounts.team(names[e.team]).id, [_csv_record(p, e)], SourceKind.CSV)
            if team_in[e.team] and (member_in[e.team] or not e.mailbox):
                allowed.add(p["email"])
        _check_shared(engine, tag, names, members, allowed)
        _check_disconnect(svc, engine, names[disconnecting], members[disconnecting])

    check()


def _account():
    from core.mailboxes.imap import ImapAccount

    return ImapAccount("127.0.0.1", 1, "plain", "user", "password")


def _check_shared(engine, tag: str, names: list[str], members: list[str], allowed: set[str]) -> None:
    with engine.connect() as conn:
        for model in SHARED_TABLES:
            table = model.__table__
            assert set(table.c.keys()) <= ALLOWED_SHARED_COLUMNS[table.name], table.name
            assert not {"team_id", "member_id"} & set(table.c.keys())
            for row in conn.execute(select(table)):
                text = " ".join(str(v) for v in row)
                for forbidden in (*names, *members, NOTE_SENTINEL, SUBJECT_SENTINEL, BODY_SENTINEL, "price is"):
                    assert forbidden not in text, (table.name, forbidden)
        shared_emails = {a for a in conn.execute(select(EmailAddress.__table__.c.address)).scalars() if tag in a}
        observed = {v for v in conn.execute(select(ContributionObservation.__table__.c.value)).scalars() if tag in v}
    # Only what an opted-in team (and, for a mailbox, an opted-in member) supplied can be shared.
    assert shared_emails <= allowed
    assert {v for v in observed if "@" in v} <= allowed
    text = text_of_every_table(engine)
    assert SUBJECT_SENTINEL not in text and BODY_SENTINEL not in text and NOTE_SENTINEL not in text


def _check_disconnect(svc, engine, team: str, member: str) -> None:
    box = svc.mailboxes.mailbox(team, member)
    source = mailbox_source(box.id)
    sources = rows(engine, CandidateSource.__table__)
    only_this = {s.candidate_id for s in sources if s.source == source} - {
        s.candidate_id for s in sources if s.source != source
    }
    svc.mailboxes.disconnect(OPERATOR, team, member)
    left = {c.id for c in rows(engine, ContactCandidate.__table__)}
    assert not only_this & left
    assert not [s for s in rows(engine, CandidateSource.__table__) if s.source == source]
