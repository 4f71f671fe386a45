"""The member's token in the sheets_job row (SQLite and PostgreSQL): a token Google refused is never
taken again, by a poll or by a write pass, and a fresh token that came in while a pass was being
refused with the old one survives that refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core.enrichment.jobs import JobOptions
from core.sheets.store import ENRICHING, WAITING, NewRow, token_sha256
from storage.db import run_write
from storage.models import SheetsJob
from storage.models.enums import Feature
from tests.google.fixtures import google_certs  # noqa: F401  (fixture)
from tests.sheets.world import make_world

OLD, FRESH = "ya29.old-token", "ya29.fresh-token"


@pytest.fixture
def job(db_url, google_certs):  # noqa: F811
    world = make_world(db_url, google_certs)
    services = world.services
    job = services.enrichment_jobs.start(
        "acme", "rep@acme.test", JobOptions(True, False, None, Feature.SHEETS), label="Sheets: t", fingerprint="f",
        total_rows=1, needed_credits=0,
    )
    member = services.accounts.member("rep@acme.test", "acme")
    services.sheets.store.create(
        dict(job_id=job.id, team_id=world.team_id, member_id=member.id, spreadsheet_id="s", sheet_id=0,
             sheet_name="Leads", header_row=1, mapping={"email": "A"}, outputs={}, output_headers={},
             state=ENRICHING, token_encrypted="sealed-old", token_sha256=token_sha256(OLD)),
        [NewRow(0, 2, "fp", False)],
    )
    yield services.sheets.store, job.id
    services.engine.dispose()


def _stored(store, job_id: int) -> tuple[str | None, str]:
    info = store.job(job_id)
    return store.token(job_id), info.state


def test_a_refused_token_is_dropped_and_never_stored_again(job) -> None:
    store, job_id = job
    store.refuse_token(job_id, token_sha256(OLD), "1 rows ready to write — open the sidebar")
    assert _stored(store, job_id) == (None, WAITING)
    assert store.job(job_id).refused_token_sha256 == token_sha256(OLD)
    assert not store.set_token(job_id, "sealed-old-again", token_sha256(OLD))  # a poll racing the refusal
    assert store.token(job_id) is None
    assert store.set_token(job_id, "sealed-fresh", token_sha256(FRESH))
    assert store.token(job_id) == "sealed-fresh"


def test_a_fresh_token_that_came_in_first_survives_the_old_ones_refusal(job) -> None:
    store, job_id = job
    store.set_token(job_id, "sealed-fresh", token_sha256(FRESH))  # the sidebar reopened mid-pass
    store.refuse_token(job_id, token_sha256(OLD), "1 rows ready to write — open the sidebar")
    assert _stored(store, job_id) == ("sealed-fresh", ENRICHING)  # the next pass uses it
    assert not store.set_token(job_id, "sealed-old-again", token_sha256(OLD))
    assert store.token(job_id) == "sealed-fresh"


def test_a_token_stored_before_its_fingerprint_was_is_dropped_on_a_refusal(job) -> None:
    store, job_id = job
    # As a job that was running when the column was added holds its token: no SHA-256 beside it.
    run_write(store.engine, lambda conn: conn.execute(
        update(SheetsJob.__table__).where(SheetsJob.__table__.c.job_id == job_id).values(token_sha256=None)))
    store.refuse_token(job_id, token_sha256(OLD), "1 rows ready to write — open the sidebar")
    assert _stored(store, job_id) == (None, WAITING)  # not used again to be refused again
