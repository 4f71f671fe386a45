"""The database itself refuses a wallet below zero (migration 0009_ledger_checks), on SQLite and
PostgreSQL, and the migration keeps the balances and transfers of a database that already has them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, text, update
from sqlalchemy.exc import IntegrityError

from core.accounts import Accounts
from core.ledger import Ledger, UsageMeta
from storage.db import is_sqlite
from storage.migrate import alembic_config, current_revision, head_revision
from storage.models import LedgerAccount
from storage.models.enums import AccountKind, Category, Feature

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
META = UsageMeta(category=Category.EMAIL, feature=Feature.API, action="lookup")
_A = LedgerAccount.__table__


def _team_with_spend(engine: Engine) -> int:
    ledger = Ledger(engine)
    team_id = Accounts(engine, ledger).create_team("acme", plan="free", now=NOW).id
    ledger.grant(team_id, 10, key="pack", expires_at=NOW + timedelta(days=60), now=NOW)
    ledger.charge(team_id, 3, key="c1", meta=META, now=NOW)
    ledger.hold(team_id, 2, key="h1", timeout_s=600, meta=META, now=NOW)
    return team_id


def _set(engine: Engine, team_id: int, kind: AccountKind, **values) -> None:
    with engine.begin() as conn:
        conn.execute(update(_A).where(_A.c.team_id == team_id, _A.c.kind == kind.value).values(**values))


@pytest.mark.parametrize(
    "overdraw",
    [
        lambda w: {"debits_posted": w.credits_posted - w.debits_pending + 1},  # spent past what came in
        lambda w: {"debits_pending": w.credits_posted - w.debits_posted + 1},  # held past what is there
    ],
    ids=["posted", "held"],
)
def test_the_database_refuses_a_negative_wallet_balance(engine: Engine, overdraw) -> None:
    team_id = _team_with_spend(engine)
    with engine.connect() as conn:
        wallet = conn.execute(
            _A.select().where(_A.c.team_id == team_id, _A.c.kind == AccountKind.WALLET.value)
        ).one()
    assert wallet.credits_posted - wallet.debits_posted - wallet.debits_pending == 100 + 10 - 3 - 2
    with pytest.raises(IntegrityError, match="ck_wallet_available_not_negative|CHECK constraint failed"):
        _set(engine, team_id, AccountKind.WALLET, **overdraw(wallet))
    # Exactly zero is allowed: a team may spend its last credit.
    _set(engine, team_id, AccountKind.WALLET, debits_posted=wallet.credits_posted - wallet.debits_pending)


def test_the_database_refuses_negative_account_totals(engine: Engine) -> None:
    team_id = _team_with_spend(engine)
    # System accounts may run negative balances (issuance does), but never negative totals.
    _set(engine, team_id, AccountKind.ISSUANCE, debits_posted=10**9)
    with pytest.raises(IntegrityError, match="ck_account_totals_not_negative|CHECK constraint failed"):
        _set(engine, team_id, AccountKind.SPEND, credits_pending=-1)


def test_the_migration_keeps_existing_ledgers_and_their_links(db_url: str, engine: Engine) -> None:
    config = alembic_config(db_url)
    # The ledger is written at head (today's models), then taken below 0009 and back up: 0009 rebuilds
    # ledger_account with rows in it and links pointing at it.
    team_id = _team_with_spend(engine)
    before = Ledger(engine).account_totals(team_id)
    transfers = len(Ledger(engine).transfers(team_id))
    command.downgrade(config, "0008_slack")
    command.upgrade(config, "head")
    assert current_revision(engine) == head_revision()
    assert Ledger(engine).account_totals(team_id) == before
    assert len(Ledger(engine).transfers(team_id)) == transfers
    if is_sqlite(engine):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    # and the ledger still works on the rebuilt table
    Ledger(engine).charge(team_id, 1, key="c2", meta=META, now=NOW)
    command.downgrade(config, "0008_slack")
    _set(engine, team_id, AccountKind.WALLET, debits_posted=10**6)  # no CHECK below 0009


def test_extending_a_hold_moves_no_credits_and_never_revives_a_timed_out_one(engine: Engine) -> None:
    from core.errors import InvalidInput
    from core.ledger import HoldNotPending

    ledger = Ledger(engine)
    team_id = Accounts(engine, ledger).create_team("acme", plan="free", now=NOW).id
    ledger.grant(team_id, 10, key="pack", expires_at=None, now=NOW)
    before = ledger.balance(team_id, now=NOW).available_credits
    hold = ledger.hold(team_id, 4, key="h1", timeout_s=600, meta=META, now=NOW)
    transfers, balance = len(ledger.transfers(team_id)), ledger.balance(team_id, now=NOW)
    extended = ledger.extend(team_id, hold.id, timeout_s=600, now=NOW + timedelta(seconds=300))
    assert extended.expires_at == NOW + timedelta(seconds=900)
    assert len(ledger.transfers(team_id)) == transfers and ledger.balance(team_id, now=NOW) == balance
    # Never shortened: a shorter timeout keeps the later expiry.
    assert ledger.extend(team_id, hold.id, timeout_s=1, now=NOW).expires_at == NOW + timedelta(seconds=900)
    assert ledger.balance(team_id, now=NOW + timedelta(seconds=800)).held_credits == 4  # past the first timeout
    late = NOW + timedelta(seconds=901)
    with pytest.raises(HoldNotPending):
        ledger.extend(team_id, hold.id, timeout_s=600, now=late)
    assert ledger.balance(team_id, now=late).held_credits == 0
    assert ledger.balance(team_id, now=late).available_credits == before  # all of it back
    with pytest.raises(InvalidInput, match="timeout_s"):
        ledger.extend(team_id, hold.id, timeout_s=0, now=NOW)
