"""Enrichment jobs and CSV enrichment against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import itertools
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.accounts import Accounts
from core.data_requests import DataRequests
from core.enrichment.csv_enrich import CsvEnrichRequest
from core.enrichment.jobs import CANCELLED_ERROR, EnrichmentJobs
from core.enrichment.rows import NOT_ENRICHED_CAP, OUTPUT_COLUMNS, output_column
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from core.sources.database import DatabaseSource
from storage.db import read_transaction
from storage.models import LedgerHold
from storage.models.enums import EmailStatus, HoldStatus, PhoneKind, PhoneStatus, TransferKind
from storage.timeutil import utcnow
from tests.enrichment import world as w

# A charge is a posted hold (two-phase) or a single-phase spend (an uncapped job's requests).
_CHARGES = (TransferKind.POST, TransferKind.SPEND)

EMAIL_PRICE, MOBILE_PRICE = 1, 8  # the built-in plans' prices
_team_names = itertools.count()


def _team(accounts: Accounts, plan: str = "basic") -> str:
    name = f"team{next(_team_names)}"
    accounts.create_team(name, plan=plan)
    accounts.add_member(name, f"rep@{name}.example")
    return name


def _columns(header: list[str]) -> dict[str, int]:
    """The appended columns' positions, by field name."""
    return {name.removeprefix("tributary_"): i for i, name in enumerate(header) if name.startswith("tributary_")}


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def _spent(accounts: Accounts, team: str) -> int:
    team_id = accounts.team(team).id
    return sum(t.amount_credits for t in accounts.ledger.transfers(team_id) if t.kind in _CHARGES)


def _posts_per_request(accounts: Accounts, team: str) -> dict[str, int]:
    team_id = accounts.team(team).id
    counts: dict[str, int] = {}
    for t in accounts.ledger.transfers(team_id):
        if t.kind in _CHARGES:
            counts[t.meta.data_requested] = counts.get(t.meta.data_requested, 0) + 1
    return counts


def _cost(people: list[w.Person]) -> int:
    """What the database source finds chargeable: verified emails and mobiles."""
    return sum(
        (EMAIL_PRICE if p.status == EmailStatus.VERIFIED else 0) + (MOBILE_PRICE if p.mobile else 0) for p in people
    )


def _request(tmp_path: Path, inp: Path, team: str, **kw) -> CsvEnrichRequest:
    defaults = dict(want_email=True, want_mobile=True)
    defaults.update(kw)
    return CsvEnrichRequest(inp, tmp_path / f"out-{team}.csv", team, f"rep@{team}.example", **defaults)


def _run(svc, request):
    plan = svc.plan(request)
    job, resumed = svc.start_or_resume(request, plan)
    return svc.run(request, plan, job, resumed=resumed)


@pytest.fixture
def world(engine):
    people = w.people(12)
    w.seed(engine, people)
    return people


def test_csv_enrichment_end_to_end_dedupes_and_charges_each_person_once(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    rows = [w.row(p) for p in world]
    rows.insert(3, w.row(world[0], note='=HYPERLINK("http://evil.example","click")'))  # duplicate person
    rows.append(w.row(world[1]))  # duplicate at the end
    rows.append(["Nobody", "Atall", "Initech", "", "", ""])  # matches no one
    rows.append(["Jane", "Doe", "", "", "", "no identifier"])
    inp = w.write_csv(tmp_path / "in.csv", rows)

    summary = _run(svc, _request(tmp_path, inp, team))

    out = _read(tmp_path / f"out-{team}.csv")
    assert len(out) == len(rows) + 1 and summary.rows == len(rows)
    assert out[0] == w.HEADER + [output_column(c) for c in OUTPUT_COLUMNS]
    col = _columns(out[0])
    for original, written in zip(rows, out[1:], strict=True):
        expected = [("'" + c if c.startswith("=") else c) for c in original]
        assert written[: len(w.HEADER)] == expected  # originals untouched except neutralisation
    first, dup = out[1], out[4]
    assert first[col["email"]] == dup[col["email"]] == world[0].email
    assert first[col["mobile_phone"]] == dup[col["mobile_phone"]] == world[0].mobile
    assert int(first[col["credits_charged"]]) == EMAIL_PRICE + MOBILE_PRICE and dup[col["credits_charged"]] == "0"
    assert out[-2][col["email_status"]] == "unavailable" and out[-2][col["match_confidence"]] == ""
    assert "needs at least one of email, LinkedIn URL, company or website" in out[-1][col["error"]]
    # Money: what the rows say equals what the ledger took, and each (person, kind) was posted once.
    assert summary.credits_charged == _spent(accounts, team) == _cost(world)
    assert set(_posts_per_request(accounts, team).values()) == {1}
    assert summary.matched == len(world) + 2 and summary.errors == 1

    # The same file again: every person is already the team's contact, nothing is charged.
    again = _run(svc, _request(tmp_path, inp, team))
    assert again.credits_charged == 0 and _spent(accounts, team) == _cost(world)
    assert [r[col["email"]] for r in _read(tmp_path / f"out-{team}.csv")] == [r[col["email"]] for r in out]


class AllFound(DatabaseSource):
    """Finds a verified email and a mobile for every person: the worst case the maximum must cover."""

    name = "all-found"
    cost_per_hit_usd = Decimal(0)

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        return EmailFinding(f"found{person.id}@{w.DOMAIN}", EmailStatus.VERIFIED, 99, utcnow(), self.name)

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        return [PhoneFinding(f"+1212555{person.id:04d}", PhoneKind.MOBILE, PhoneStatus.VALID, "mobile", self.name)]


def test_dry_run_charges_nothing_its_maximum_is_exact_and_expected_matches_the_database(
    engine, world, tmp_path
) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    rows = [w.row(p) for p in world] + [w.row(world[2]), ["Nobody", "Atall", "Initech", "", "", ""]]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    request = _request(tmp_path, inp, team)
    team_id = accounts.team(team).id
    transfers_before = len(accounts.ledger.transfers(team_id))
    estimate = svc.estimate(request, svc.plan(request))
    assert len(accounts.ledger.transfers(team_id)) == transfers_before  # nothing charged, nothing held
    assert estimate.distinct_people == len(world) and estimate.matched_rows == len(world) + 1
    assert estimate.max_credits == len(world) * (EMAIL_PRICE + MOBILE_PRICE)
    assert estimate.expected_credits == _cost(world)

    # With the database as the source, the real cost is the expected one.
    assert _run(svc, request).credits_charged == _cost(world) == estimate.expected_credits
    # Already-paid (person, kind) pairs drop out of the next maximum.
    paid = sum(p.status == EmailStatus.VERIFIED for p in world) + sum(bool(p.mobile) for p in world)
    again = svc.estimate(request, svc.plan(request))
    assert again.max_credits == estimate.max_credits - _cost(world)
    assert again.already_paid_emails + again.already_paid_mobiles == paid

    # When every lookup finds chargeable data, the run costs exactly the maximum.
    team2 = _team(accounts)
    accounts2 = Accounts(engine)
    dr = DataRequests(engine, AllFound(engine), accounts=accounts2, hold_timeout_s=60, lease_s=2)
    svc2 = type(svc)(EnrichmentJobs(engine, dr, accounts=accounts2, workers=4))
    request2 = _request(tmp_path, inp, team2)
    maximum = svc2.estimate(request2, svc2.plan(request2)).max_credits
    assert _run(svc2, request2).credits_charged == maximum == _spent(accounts, team2)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=13), min_size=1, max_size=20),
    cap=st.integers(min_value=0, max_value=45),
)
def test_spend_cap_is_never_exceeded_and_rows_say_what_the_ledger_took(engine, world, tmp_path, picks, cap) -> None:
    svc = w.services(engine, workers=4)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    # 12 and 13 are rows that match nobody.
    rows = [w.row(world[i]) if i < len(world) else [f"Ghost{i}", "Nobody", "Initech", "", "", ""] for i in picks]
    inp = w.write_csv(tmp_path / f"in-{team}.csv", rows)
    summary = _run(svc, _request(tmp_path, inp, team, max_credits=cap))
    spent = _spent(accounts, team)
    assert spent <= cap
    assert summary.rows == len(rows) and summary.credits_charged == spent
    assert set(_posts_per_request(accounts, team).values()) <= {1}
    balance = accounts.ledger.balance(accounts.team(team).id)
    assert balance.held_credits == 0  # the cap's hold was released at the end
    assert balance.available_credits == 1000 - spent
    distinct = [world[i] for i in sorted(set(picks)) if i < len(world)]
    if cap >= _cost(distinct):
        assert spent == _cost(distinct)  # a cap that is not reached changes nothing
    else:
        assert any(line[-1] == NOT_ENRICHED_CAP for line in _read(tmp_path / f"out-{team}.csv")[1:])


def test_two_jobs_of_one_team_at_once_pay_each_person_once(engine, world, tmp_path) -> None:
    accounts = Accounts(engine)
    team = _team(accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world] * 2)
    results = []

    def job(n: int) -> None:
        svc = w.services(engine, workers=4)
        request = CsvEnrichRequest(inp, tmp_path / f"out{n}.csv", team, f"rep@{team}.example", True, True)
        results.append(_run(svc, request).credits_charged)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert sum(results) == _spent(accounts, team) == _cost(world)
    assert set(_posts_per_request(accounts, team).values()) == {1}


def test_cancel_releases_the_cap_and_marks_rows_not_reached(engine, world, tmp_path) -> None:
    svc = w.services(engine, workers=2, flush_rows=2)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    rows = [w.row(p) for p in world] * 3
    inp = w.write_csv(tmp_path / "in.csv", rows)
    request = _request(tmp_path, inp, team, max_credits=200)
    plan = svc.plan(request)
    job, _ = svc.start_or_resume(request, plan)

    def on_progress(progress) -> None:
        if progress.done_rows >= 2:
            svc.jobs.cancel(job.id)

    summary = svc.run(request, plan, job, on_progress=on_progress)
    assert summary.cancelled and summary.rows == len(rows)
    out = _read(tmp_path / f"out-{team}.csv")
    assert len(out) == len(rows) + 1 and out[-1][-1] == CANCELLED_ERROR
    with read_transaction(engine) as conn:
        hold = conn.execute(select(LedgerHold.__table__).where(LedgerHold.__table__.c.id == job.hold_id)).one()
    assert hold.status != HoldStatus.PENDING.value
    assert accounts.ledger.balance(accounts.team(team).id).held_credits == 0
    assert summary.credits_charged == _spent(accounts, team) <= 200
    assert svc.jobs.job(job.id).status == "cancelled"
