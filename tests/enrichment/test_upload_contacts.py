"""An upload's rows that match a shared person become the uploading member's team contacts (source
csv), with nothing accessed or charged for it; rows matching no one are not saved (DESIGN: a team's
contacts are people it accessed, uploaded or synced). Through the composition root, both databases."""

from __future__ import annotations

from pathlib import Path

from core.enrichment.csv_enrich import CsvEnrichRequest
from core.services import Services
from core.settings import Settings
from storage.models.enums import ContactSource
from tests.enrichment import world as w


def test_matched_upload_rows_become_the_members_contacts(engine, db_url: str, tmp_path: Path) -> None:
    people = w.people(6)
    w.seed(engine, people)
    svc = Services.from_settings(Settings(_env_file=None, database_url=db_url, development=True))
    svc.accounts.create_team("uploader", plan="basic")
    rep = svc.accounts.add_member("uploader", "rep@uploader.example")
    rows = [w.row(p) for p in people[:4]] + [["Nobody", "Atall", "Initech", "", "", ""]]
    inp = w.write_csv(tmp_path / "in.csv", rows)
    request = CsvEnrichRequest(inp, tmp_path / "out.csv", "uploader", rep.email, want_email=False, want_mobile=False)
    csv = svc.csv_enrichment
    plan = csv.plan(request)
    job, resumed = csv.start_or_resume(request, plan)
    summary = csv.run(request, plan, job, resumed=resumed)
    assert summary.matched == 4
    saved = svc.team_contacts.find(rep).contacts
    assert sorted(c.full_name for c in saved) == sorted(f"{p.first} {p.last}" for p in people[:4])
    assert {(c.source, c.owner_member_id) for c in saved} == {(ContactSource.CSV, rep.id)}
    assert svc.ledger.balance(svc.accounts.team("uploader").id).available_credits == svc.accounts.team(
        "uploader"
    ).plan.monthly_credits  # matching and saving cost nothing
