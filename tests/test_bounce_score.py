"""Issue 12 item 17: a hard bounce lowers the shared address's score with its status (it kept 96)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core.bounces.status_downgrade import downgrade_after_hard_bounce
from core.people.contacts import NewEmail, NewPerson, add_person
from storage.db import run_write
from storage.models import EmailAddress
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow


@pytest.mark.parametrize(
    ("reason", "status", "score"),
    [("mailbox_not_found", "invalid", 0), ("disabled", "update_required", 10), (None, "update_required", 10)],
)
def test_hard_bounce_lowers_the_score_with_the_status(engine: Engine, reason, status, score) -> None:
    now = utcnow()
    add_person(
        engine,
        NewPerson(
            full_name="Vera Lane",
            company="Initech",
            domain="initech.test",
            emails=[NewEmail("vera@initech.test", EmailStatus.VERIFIED, 96, now)],
        ),
    )
    assert run_write(engine, lambda conn: downgrade_after_hard_bounce(conn, "Vera@initech.test", reason, now))
    with engine.connect() as conn:
        row = conn.execute(select(EmailAddress.__table__).where(EmailAddress.address == "vera@initech.test")).one()
    assert (row.status, row.score) == (status, score)
