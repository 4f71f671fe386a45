"""Low-severity findings of the security review, each reproduced (both databases where stored):
corroboration needs a verifying fact, and relays may only be sent `TRIBUTARY_RELAY_PASSWORD_*`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from core.accounts import Accounts
from core.contributions import ContactRecord, Contributions
from core.errors import InvalidInput
from core.sending.relays import Relays
from storage.db import read_transaction, run_write
from storage.models import ContactCandidate, Person, SmtpRelay
from storage.models.contributor import SourceKind

KEY = "test-contributor-key-" + "k" * 20
REPO = Path(__file__).resolve().parents[1]


def _people(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return conn.execute(select(func.count()).select_from(Person)).scalar_one()


def _record(**fields) -> ContactRecord:
    values = dict(full_name="Jane Doe", company="Acme, Inc.", domain="acme.com", title="VP Sales")
    values.update(fields)
    return ContactRecord(**values)


def test_name_and_employer_from_two_customers_do_not_make_a_shared_person(engine: Engine) -> None:
    accounts, contributions = Accounts(engine), Contributions(engine, KEY)
    a, b = accounts.create_team("a"), accounts.create_team("b")
    contributions.contribute(a.id, [_record()], SourceKind.CSV)
    second = contributions.contribute(b.id, [_record(title="Head of Sales")], SourceKind.CRM)
    assert second.shared == 0 and second.candidates == 1
    assert _people(engine) == 0
    # Different emails from the two teams do not corroborate the identity either.
    c = accounts.create_team("c")
    contributions.contribute(c.id, [_record(email="jane@acme.com")], SourceKind.CSV)
    assert contributions.contribute(a.id, [_record(email="j.doe@acme.com")], SourceKind.CSV).shared == 0
    assert _people(engine) == 0
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(ContactCandidate)).scalar_one() >= 3


@pytest.mark.parametrize(
    "identity", [{"email": "jane.doe@acme.com"}, {"linkedin_url": "https://www.linkedin.com/in/janedoe"}]
)
def test_the_same_email_or_linkedin_from_two_teams_makes_it_shared(engine: Engine, identity: dict) -> None:
    accounts, contributions = Accounts(engine), Contributions(engine, KEY)
    a, b = accounts.create_team("a"), accounts.create_team("b")
    contributions.contribute(a.id, [_record(**identity)], SourceKind.CSV)
    assert contributions.contribute(b.id, [_record(**identity)], SourceKind.CSV).shared == 1
    assert _people(engine) == 1


def test_an_smtp_verified_email_alone_makes_it_shared(engine: Engine) -> None:
    accounts, contributions = Accounts(engine), Contributions(engine, KEY)
    a = accounts.create_team("a")
    summary = contributions.contribute(a.id, [_record(email="jane.doe@acme.com")], SourceKind.SMTP_VERIFICATION)
    assert summary.shared == 1


# ---- relays: only dedicated password variables ---------------------------------------------------


@pytest.mark.parametrize("name", ["TRIBUTARY_SLACK_CLIENT_SECRET", "DATABASE_PASSWORD", "TRIBUTARY_RELAY_PASSWORD_"])
def test_relay_password_variable_must_have_the_dedicated_prefix(engine: Engine, name: str) -> None:
    accounts = Accounts(engine)
    accounts.create_team("acme")
    with pytest.raises(InvalidInput, match="TRIBUTARY_RELAY_PASSWORD_"):
        Relays(engine, accounts).set_relay("acme", host="smtp.acme.test", username="u", password_env=name)


def test_a_relay_stored_before_the_rule_cannot_send_another_secret(engine: Engine, monkeypatch) -> None:
    accounts = Accounts(engine)
    accounts.create_team("acme")
    relays = Relays(engine, accounts)
    relays.set_relay("acme", host="smtp.acme.test", username="u", password_env="TRIBUTARY_RELAY_PASSWORD_ACME")
    run_write(engine, lambda c: c.execute(update(SmtpRelay).values(password_env="TRIBUTARY_SLACK_CLIENT_SECRET")))
    monkeypatch.setenv("TRIBUTARY_SLACK_CLIENT_SECRET", "the-slack-secret")
    relay = relays.relay_for(accounts.team("acme").id)
    with pytest.raises(InvalidInput) as refused:
        relay.password()
    assert "the-slack-secret" not in str(refused.value) and "TRIBUTARY_RELAY_PASSWORD_" in str(refused.value)


@pytest.mark.parametrize("backend", ["sqlite"])  # the CLI's error path; storage is covered above
def test_relay_set_with_another_variable_exits_2_with_one_line(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "TRIBUTARY_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert run("teams", "create", "acme", "--plan", "free").returncode == 0
    proc = run("relay", "set", "acme", "--host", "smtp.acme.test", "--user", "u",
               "--password-env", "TRIBUTARY_SLACK_CLIENT_SECRET")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "TRIBUTARY_RELAY_PASSWORD_" in proc.stderr
