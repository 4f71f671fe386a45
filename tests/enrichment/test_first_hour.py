"""Issue 12, CSV enrichment: the first hour of a new user (caps, empty wallets, resume, paths, matched
counts, contribution), against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.accounts import Accounts
from core.contributions import Contributions
from core.enrichment.csv_enrich import CsvEnrichRequest
from core.enrichment.rows import NOT_ENRICHED_CAP, NOT_ENRICHED_CREDITS, UNDONE_ERRORS
from core.errors import InvalidInput
from core.ledger import UsageMeta
from core.normalize.contact import ContactQuery
from storage.db import read_transaction
from storage.models import EnrichmentJob
from storage.models.enums import Category, EmailStatus, Feature, TransferKind
from storage.timeutil import utcnow
from tests.enrichment import world as w

_CHARGES = (TransferKind.POST, TransferKind.SPEND)
EMAIL_PRICE, MOBILE_PRICE = 1, 8
_names = itertools.count()


def _team(accounts: Accounts, **kw) -> str:
    name = f"hour{next(_names)}"
    accounts.create_team(name, plan="basic", **kw)
    accounts.add_member(name, f"rep@{name}.example")
    return name


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def _column(header: list[str], field: str) -> int:
    return header.index(f"tributary_{field}")


def _job_spent(accounts: Accounts, team: str) -> int:
    """What enrichment charged the team (charges made by the test itself are not CSV)."""
    team_id = accounts.team(team).id
    return sum(
        t.amount_credits
        for t in accounts.ledger.transfers(team_id)
        if t.kind in _CHARGES and t.meta.feature == Feature.CSV
    )


def _charged_once(accounts: Accounts, team: str) -> bool:
    team_id = accounts.team(team).id
    keys = [t.meta.data_requested for t in accounts.ledger.transfers(team_id) if t.kind in _CHARGES]
    keys = [k for k in keys if k]
    return len(keys) == len(set(keys))


def _request(tmp_path: Path, inp: Path, team: str, **kw) -> CsvEnrichRequest:
    defaults = dict(want_email=True, want_mobile=True)
    defaults.update(kw)
    return CsvEnrichRequest(inp, tmp_path / f"out-{team}.csv", team, f"rep@{team}.example", **defaults)


def _run(svc, request, *, preview: bool = True):
    plan = svc.plan(request)
    needed = svc.estimate(request, plan).max_uncapped_credits if preview else None
    job, resumed = svc.start_or_resume(request, plan, needed_credits=needed)
    return svc.run(request, plan, job, resumed=resumed)


def _cost(people: list[w.Person]) -> int:
    return sum(
        (EMAIL_PRICE if p.status == EmailStatus.VERIFIED else 0) + (MOBILE_PRICE if p.mobile else 0) for p in people
    )


@pytest.fixture
def world(engine):
    people = w.people(12)
    w.seed(engine, people)
    return people


def _credits_written(rows: list[list[str]]) -> int:
    col = _column(rows[0], "credits_charged")
    return sum(int(r[col]) for r in rows[1:])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=13), min_size=1, max_size=16),
    cap=st.integers(min_value=0, max_value=40),
    more=st.integers(min_value=1, max_value=120),
)
def test_capped_rows_get_one_plain_status_and_resume_finishes_exactly_those(
    engine, world, tmp_path, picks, cap, more
) -> None:
    svc = w.services(engine, workers=4)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    rows = [w.row(world[i]) if i < len(world) else [f"Ghost{i}", "Nobody", "Initech", "", "", ""] for i in picks]
    inp = w.write_csv(tmp_path / f"in-{team}.csv", rows)
    first = _run(svc, _request(tmp_path, inp, team, max_credits=cap))
    out1 = _read(tmp_path / f"out-{team}.csv")
    err = _column(out1[0], "error")
    assert _credits_written(out1) == _job_spent(accounts, team) == first.credits_charged <= cap
    assert not any("hold" in r[err] or "pending" in r[err] for r in out1[1:])  # never ledger internals
    undone = [i for i, r in enumerate(out1[1:]) if r[err] in UNDONE_ERRORS]
    assert {out1[1 + i][err] for i in undone} <= {NOT_ENRICHED_CAP}
    assert first.not_enriched == len(undone) and first.status == ("incomplete" if undone else "done")

    if undone:  # a higher cap for the whole job: exactly the undone rows are done now
        second = _run(svc, _request(tmp_path, inp, team, max_credits=cap + more, resume=True))
        out2 = _read(tmp_path / f"out-{team}.csv")
        for i, (before, after) in enumerate(zip(out1[1:], out2[1:], strict=True)):
            if i not in undone:
                assert after == before  # nothing else is touched
        assert second.resumed and _credits_written(out2) == _job_spent(accounts, team) <= cap + more
        if second.not_enriched == 0:
            assert second.status == "done"
    assert _charged_once(accounts, team)
    assert accounts.ledger.balance(accounts.team(team).id).held_credits == 0


def _drain_to(accounts: Accounts, team: str, left: int) -> None:
    team_id = accounts.team(team).id
    available = accounts.ledger.balance(team_id).available_credits
    meta = UsageMeta(category=Category.EMAIL, feature=Feature.CLI, action="test")
    accounts.ledger.charge(team_id, available - left, key=f"drain-{team}", meta=meta)


@pytest.mark.parametrize("cap", [None, 1000])
def test_an_empty_wallet_leaves_rows_out_of_credits_and_a_top_up_finishes_them(engine, world, tmp_path, cap) -> None:
    svc = w.services(engine, workers=2)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    _drain_to(accounts, team, 20)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world])
    request = _request(tmp_path, inp, team, max_credits=cap)
    estimate = svc.estimate(request, svc.plan(request))
    assert estimate.available_credits == 20 and estimate.short_credits == estimate.max_credits - 20 > 0

    first = _run(svc, request)  # a cap above the balance is not refused: a ceiling, not a demand
    out1 = _read(tmp_path / f"out-{team}.csv")
    err = _column(out1[0], "error")
    assert first.status == "incomplete" and first.not_enriched > 0
    assert {r[err] for r in out1[1:] if r[err]} == {NOT_ENRICHED_CREDITS}
    assert _credits_written(out1) == _job_spent(accounts, team) <= 20

    team_id = accounts.team(team).id
    accounts.ledger.grant(team_id, 500, key=f"topup-{team}", expires_at=utcnow() + timedelta(days=30))
    second = _run(svc, _request(tmp_path, inp, team, resume=True))
    out2 = _read(tmp_path / f"out-{team}.csv")
    assert second.status == "done" and second.not_enriched == 0
    assert _credits_written(out2) == _job_spent(accounts, team) == _cost(world)
    assert _charged_once(accounts, team)
    assert accounts.ledger.balance(team_id).held_credits == 0


def test_a_cap_holds_only_what_the_preview_needs_and_says_so(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    _drain_to(accounts, team, 682)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world[:3]])
    request = _request(tmp_path, inp, team, max_credits=1000)
    plan = svc.plan(request)
    needed = svc.estimate(request, plan).max_uncapped_credits
    assert needed == 3 * (EMAIL_PRICE + MOBILE_PRICE)
    job, _ = svc.start_or_resume(request, plan, needed_credits=needed)
    assert job.held_credits == needed  # not the cap, not the balance
    assert [j.held_credits for j in svc.jobs.jobs(team)] == [needed]  # `enrich-jobs list` shows it
    summary = svc.run(request, plan, job)
    assert summary.status == "done" and summary.credits_charged == _cost(world[:3])
    assert svc.jobs.job(job.id).held_credits == 0


def test_matched_count_is_the_filled_match_confidence_cells(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts, contribute=False)
    # A record only this team's own upload holds: it matches (with a confidence) but has no person.
    private = ContactQuery(first_name="Olga", last_name="Private", company="Initech", domain=w.DOMAIN)
    Contributions(engine, "test-key").contribute(accounts.team(team).id, [private], "csv")
    rows = [w.row(p) for p in world[:4]] + [["Olga", "Private", "Initech", f"https://{w.DOMAIN}", "", ""]]
    rows.append(["Nobody", "Atall", "Initech", "", "", ""])
    inp = w.write_csv(tmp_path / "in.csv", rows)
    summary = _run(svc, _request(tmp_path, inp, team))
    out = _read(tmp_path / f"out-{team}.csv")
    confidence = _column(out[0], "match_confidence")
    filled = sum(bool(r[confidence]) for r in out[1:])
    assert out[5][confidence], "the team-only record matched"
    assert summary.matched == filled == 5
    estimate = svc.estimate(_request(tmp_path, inp, team), svc.plan(_request(tmp_path, inp, team)))
    assert estimate.matched_rows == filled


def test_the_preview_says_whether_the_upload_contributes(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(world[0])])
    request = _request(tmp_path, inp, team)
    assert svc.plan(request).team_contributes and svc.estimate(request, svc.plan(request)).contributes
    accounts.set_contribute(team, False)
    assert not svc.plan(request).team_contributes
    assert not svc.estimate(request, svc.plan(request)).contributes


def _jobs(engine) -> int:
    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).select_from(EnrichmentJob)).scalar_one()


@pytest.mark.parametrize(
    "output,message",
    [
        ("missing/out.csv", "the folder .*missing does not exist"),
        ("existing", "existing: is a folder, not a file"),
        ("in.csv", "the output must be another file than the input"),
    ],
)
def test_output_path_is_checked_before_any_job_or_hold(engine, world, tmp_path, output, message) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    (tmp_path / "existing").mkdir()
    inp = w.write_csv(tmp_path / "in.csv", [w.row(world[0])])
    request = CsvEnrichRequest(inp, tmp_path / output, team, f"rep@{team}.example", True, True, max_credits=50)
    with pytest.raises(InvalidInput, match=message):
        svc.plan(request)
    assert _jobs(engine) == 0 and accounts.ledger.balance(accounts.team(team).id).held_credits == 0
    assert list(tmp_path.glob("*.partial")) == [] and list((tmp_path / "existing").iterdir()) == []


def test_a_folder_as_input_is_named_as_such(engine, tmp_path) -> None:
    svc = w.services(engine)
    team = _team(svc.jobs.accounts)
    request = CsvEnrichRequest(tmp_path, tmp_path / "out.csv", team, f"rep@{team}.example", True, False)
    with pytest.raises(InvalidInput, match="is a folder, not a file"):
        svc.plan(request)


def test_a_failed_run_removes_its_partial_file_and_publishes_nothing(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    team = _team(svc.jobs.accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world[:3]])
    request = _request(tmp_path, inp, team)
    plan = svc.plan(request)
    job, _ = svc.start_or_resume(request, plan)
    with inp.open("a", newline="") as f:  # the file changes under the job
        csv.writer(f).writerow(w.row(world[4]))
    with pytest.raises(InvalidInput, match="did it change"):
        svc.run(request, plan, job)
    assert not (tmp_path / f"out-{team}.csv").exists()
    assert list(tmp_path.glob("*.partial")) == []


def test_an_incomplete_job_can_be_cancelled_and_then_not_resumed(engine, world, tmp_path) -> None:
    svc = w.services(engine)
    accounts = svc.jobs.accounts
    team = _team(accounts)
    inp = w.write_csv(tmp_path / "in.csv", [w.row(p) for p in world])
    first = _run(svc, _request(tmp_path, inp, team, max_credits=5))
    assert first.status == "incomplete" and first.errors == 0
    assert svc.jobs.job(first.job_id).progress.error_rows == 0  # undone rows are not errors
    assert svc.jobs.cancel(first.job_id).status == "cancelled"
    with pytest.raises(InvalidInput, match="no unfinished job"):
        _run(svc, _request(tmp_path, inp, team, max_credits=500, resume=True))
    assert accounts.ledger.balance(accounts.team(team).id).held_credits == 0
