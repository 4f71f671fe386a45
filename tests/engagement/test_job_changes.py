"""Job changes on both databases: corroborated moves flip the old email, write the employment
history, tell each contact's owner once through the outbox, show in the digest, in the team's
contacts and in `tributary contacts changes`; a single uncorroborated source changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from core.contributions import ContactRecord, contacts_with_updates
from core.job_changes import JobEvidence
from core.outbox import JobChangeAlert, NoticeKind
from core.people.contacts import NewEmail, NewPerson, add_person
from core.services import Services
from core.settings import Settings
from core.team_contacts.models import ContactFilter
from core.usage.text import render_text
from storage.db import read_transaction
from storage.models import EmailAddress, EmploymentHistory, JobChangeNotice
from storage.models.contributor import SourceKind
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow

MOVED = ContactRecord(
    full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", company="Globex", domain="globex.com"
)


@pytest.fixture
def svc(engine: Engine, db_url: str) -> Services:
    return Services(settings=Settings(_env_file=None, database_url=db_url), engine=engine)


@pytest.fixture
def jane(svc: Services) -> int:
    return add_person(
        svc.engine,
        NewPerson(
            full_name="Jane Doe",
            company="Acme",
            domain="acme.com",
            linkedin_url="https://www.linkedin.com/in/janedoe",
            emails=[NewEmail("jane.doe@acme.com", EmailStatus.VERIFIED, 95, utcnow() - timedelta(days=2))],
        ),
    )


def holder(svc: Services, jane: int, name: str = "holder") -> tuple[int, int]:
    """A team that accessed Jane's email (so she is its contact, owned by the member who paid)."""
    team = svc.accounts.create_team(name)
    rep = svc.accounts.add_member(name, f"rep@{name}.test")
    svc.data_requests.access_email(team.id, rep.id, jane, now=utcnow() - timedelta(days=1))
    return team.id, rep.id


def email_status(engine: Engine, address: str) -> str:
    with read_transaction(engine) as conn:
        return conn.execute(select(EmailAddress.status).where(EmailAddress.address == address)).scalar_one()


def history(engine: Engine, person_id: int) -> list[tuple]:
    h = EmploymentHistory.__table__
    with read_transaction(engine) as conn:
        rows = conn.execute(select(h).where(h.c.person_id == person_id).order_by(h.c.id)).all()
    return [(r.from_on is None, r.to_on is None, r.evidence) for r in rows]


def job_notices(svc: Services, team_id: int) -> list:
    return [n for n in svc.outbox.notices(team_id=team_id) if n.kind == NoticeKind.JOB_CHANGE]


def test_two_sources_move_jane_flip_her_email_and_tell_the_owner_once(svc: Services, jane: int) -> None:
    team_id, rep_id = holder(svc, jane)
    other_id, other_rep = holder(svc, jane, "other")
    a, b = svc.accounts.create_team("a"), svc.accounts.create_team("b")

    svc.contributions.contribute(a.id, [MOVED], SourceKind.CRM)
    assert email_status(svc.engine, "jane.doe@acme.com") == EmailStatus.VERIFIED.value  # one source: nothing
    assert history(svc.engine, jane) == [] and job_notices(svc, team_id) == []
    svc.contributions.contribute(b.id, [MOVED], SourceKind.CSV)

    assert email_status(svc.engine, "jane.doe@acme.com") == EmailStatus.UPDATE_REQUIRED.value
    # The stint that ended (start unknown) and the new one, open, on two sources' word.
    assert history(svc.engine, jane) == [(True, False, "first_known"), (False, True, "two_sources")]
    [notice] = job_notices(svc, team_id)
    assert notice.member_id == rep_id  # the contact's owner
    alert = notice.payload
    assert isinstance(alert, JobChangeAlert)
    assert (alert.full_name, alert.old_company, alert.new_company, alert.old_email) == (
        "Jane Doe", "Acme", "Globex", "jane.doe@acme.com",
    )  # fmt: skip
    assert [n.member_id for n in job_notices(svc, other_id)] == [other_rep]

    # Detection again (the sweep, twice; the same uploads again): nobody is told twice.
    assert svc.job_changes.detect() == 0
    assert svc.job_changes.detect() == 0
    svc.contributions.contribute(a.id, [MOVED], SourceKind.CRM)
    svc.contributions.contribute(b.id, [MOVED], SourceKind.CSV)
    assert len(job_notices(svc, team_id)) == 1 and len(job_notices(svc, other_id)) == 1
    with read_transaction(svc.engine) as conn:
        assert len(conn.execute(select(JobChangeNotice)).all()) == 2

    [change] = svc.job_changes.changes("holder")
    assert (change.full_name, change.old_company, change.new_company, change.evidence, change.notified) == (
        "Jane Doe", "Acme", "Globex", JobEvidence.TWO_SOURCES, True,
    )  # fmt: skip
    assert change.owner_email == "rep@holder.test"
    assert svc.job_changes.changes("holder", since=change.changed_on + timedelta(days=1)) == []
    assert svc.job_changes.changes("a") == []  # a never saved her

    # The team's contacts show the flag live, with the new company; the CRM helper's list still works.
    rep = svc.accounts.member(rep_id, team_id)
    [view] = svc.team_contacts.find(rep, ContactFilter()).contacts
    assert (view.job_change_on, view.company) == (change.changed_on, "Globex")
    [update] = contacts_with_updates(svc.engine, team_id)
    assert (update.old_email, update.company) == ("jane.doe@acme.com", "Globex")

    digest = svc.usage_digests.build("holder", "weekly")
    assert digest.job_changes.count == 1 and digest.job_changes.names == ("Jane Doe (Acme -> Globex)",)
    assert "Job changes: 1: Jane Doe (Acme -> Globex)" in render_text(digest)
    assert svc.usage_digests.build("a", "weekly").job_changes.count == 0


def test_a_single_uncorroborated_source_changes_nothing(svc: Services, jane: int) -> None:
    team_id, _ = holder(svc, jane)
    a = svc.accounts.create_team("a")
    for _ in range(3):  # the same team, however often, is one source
        svc.contributions.contribute(a.id, [MOVED], SourceKind.CSV)
    assert svc.job_changes.detect() == 0
    assert email_status(svc.engine, "jane.doe@acme.com") == EmailStatus.VERIFIED.value
    assert history(svc.engine, jane) == []
    assert job_notices(svc, team_id) == [] and svc.job_changes.changes("holder") == []
    assert svc.usage_digests.build("holder", "weekly").job_changes.count == 0


def test_an_email_our_verifier_accepted_at_the_new_domain_is_enough(svc: Services, jane: int) -> None:
    team_id, rep_id = holder(svc, jane)
    a = svc.accounts.create_team("a")
    verified = ContactRecord(
        full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", email="jane@globex.com", company="Globex",
        domain="globex.com",
    )  # fmt: skip
    svc.contributions.contribute(a.id, [verified], SourceKind.SMTP_VERIFICATION)
    assert email_status(svc.engine, "jane.doe@acme.com") == EmailStatus.UPDATE_REQUIRED.value
    assert email_status(svc.engine, "jane@globex.com") == EmailStatus.VERIFIED.value  # the new one is fine
    assert history(svc.engine, jane)[-1] == (False, True, "verified_email")
    assert [n.member_id for n in job_notices(svc, team_id)] == [rep_id]


def test_a_verified_email_elsewhere_does_not_move_anyone(svc: Services, jane: int) -> None:
    """The verified email must be at the new employer's own domain."""
    holder(svc, jane)
    a = svc.accounts.create_team("a")
    record = ContactRecord(
        full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", email="jane@initech.com", company="Globex",
        domain="globex.com",
    )  # fmt: skip
    svc.contributions.contribute(a.id, [record], SourceKind.SMTP_VERIFICATION)
    assert email_status(svc.engine, "jane.doe@acme.com") == EmailStatus.VERIFIED.value
    assert history(svc.engine, jane) == []


def test_a_contact_saved_after_the_move_is_not_a_change_for_that_team(svc: Services, jane: int) -> None:
    a, b = svc.accounts.create_team("a"), svc.accounts.create_team("b")
    svc.contributions.contribute(a.id, [MOVED], SourceKind.CSV, now=utcnow() - timedelta(days=3))
    svc.contributions.contribute(b.id, [MOVED], SourceKind.CSV, now=utcnow() - timedelta(days=3))
    team_id, _ = holder(svc, jane, "late")  # saved her at Globex, a day ago
    assert svc.job_changes.detect() == 0
    assert svc.job_changes.changes("late") == [] and job_notices(svc, team_id) == []


def test_contacts_changes_from_the_command_line(svc: Services, jane: int, db_url: str, tmp_path) -> None:
    holder(svc, jane)
    a, b = svc.accounts.create_team("a"), svc.accounts.create_team("b")
    svc.contributions.contribute(a.id, [MOVED], SourceKind.CRM)
    svc.contributions.contribute(b.id, [MOVED], SourceKind.CSV)
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "contacts", "changes", *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    listed = run("holder")
    assert listed.returncode == 0, listed.stderr
    assert "Jane Doe  Acme -> Globex" in listed.stdout and "owner rep@holder.test" in listed.stdout
    as_json = run("holder", "--json")
    assert as_json.returncode == 0, as_json.stderr
    [row] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (row["new_company"], row["evidence"]) == ("Globex", "two_sources")
    assert "no job changes" in run("holder", "--since", "2999-01-01").stdout
    bad = run("holder", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_the_new_shared_tables_name_no_team_member_or_send(engine: Engine) -> None:
    from sqlalchemy import inspect

    for table in ("email_engagement", "employment_history"):
        columns = {c["name"] for c in inspect(engine).get_columns(table)}
        assert not {c for c in columns if "team" in c or "member" in c or "send" in c or "contributor" in c}, table


def test_two_detections_at_once_tell_each_owner_once(svc: Services, jane: int) -> None:
    import threading

    from sqlalchemy import delete

    from storage.db import run_write
    from storage.models import OutboxNotice

    team_id, _ = holder(svc, jane)
    a, b = svc.accounts.create_team("a"), svc.accounts.create_team("b")
    svc.contributions.contribute(a.id, [MOVED], SourceKind.CRM)
    svc.contributions.contribute(b.id, [MOVED], SourceKind.CSV)
    # As if the move had been recorded without its notices (the sweep's case).
    run_write(svc.engine, lambda conn: (conn.execute(delete(JobChangeNotice.__table__)),
                                        conn.execute(delete(OutboxNotice.__table__))))  # fmt: skip
    barrier = threading.Barrier(2)
    told: list[int] = []

    def detect() -> None:
        barrier.wait()
        told.append(svc.job_changes.detect())

    threads = [threading.Thread(target=detect) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(told) == [0, 1] and len(job_notices(svc, team_id)) == 1
