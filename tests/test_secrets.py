"""Secrets at rest (SecretBox, Slack tokens, webhook secrets, rotation) and the production key gate
(`serve`, `worker`, gunicorn refuse default or missing keys; `secrets init` makes real ones)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import insert, select

from bot.tokens import EncryptedInstallationStore
from core.accounts import Accounts
from core.bounces.webhook_secrets import WebhookSecrets
from core.ledger import Ledger
from core.secrets import (
    SecretBox,
    SecretsError,
    generate_key,
    production_problems,
    require_production_keys,
    rotate_stored_secrets,
)
from core.settings import Settings
from storage.db import read_transaction, run_write
from storage.models import TeamWebhookSecret, slack_bots, slack_installations

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = generate_key(), generate_key()
TOKEN = "xoxb-1234-5678-secret-bot-token"
REAL_KEYS = dict(
    secret_keys=SecretStr(NEW),
    contributor_key=SecretStr("c" * 40),
    verp_key=SecretStr("v" * 40),
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    return {**env, **extra}


def test_secret_box_encrypts_opens_with_any_listed_key_and_rotates_to_the_newest() -> None:
    old_box = SecretBox([OLD])
    sealed = old_box.encrypt(TOKEN)
    assert TOKEN not in sealed and old_box.decrypt(sealed) == TOKEN
    both = SecretBox([NEW, OLD])
    assert both.decrypt(sealed) == TOKEN and not both.is_newest(sealed)
    rotated = both.rotate(sealed)
    assert SecretBox([NEW]).decrypt(rotated) == TOKEN and both.is_newest(rotated)
    with pytest.raises(SecretsError) as wrong:
        SecretBox([NEW]).decrypt(sealed)
    assert NEW not in str(wrong.value) and OLD not in str(wrong.value)
    with pytest.raises(SecretsError, match="key 2 is not a Fernet key") as bad:
        SecretBox([NEW, "not-a-key-but-secret-looking"])
    assert "not-a-key-but-secret-looking" not in str(bad.value)


def test_production_problems_name_every_default_or_missing_key() -> None:
    dev = Settings(_env_file=None)
    problems = " ".join(production_problems(dev))
    for name in ("TRIBUTARY_CONTRIBUTOR_KEY", "TRIBUTARY_SECRET_KEYS", "TRIBUTARY_VERP_KEY"):
        assert name in problems
    assert production_problems(Settings(_env_file=None, **REAL_KEYS)) == []
    require_production_keys(Settings(_env_file=None, development=True), "test")  # a dev box may


def _cli(*args: str, cwd: Path, env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("command", [["serve"], ["worker", "--no-periodic"]])
def test_serve_and_worker_refuse_the_default_keys(tmp_path: Path, command: list[str]) -> None:
    env = _clean_env(TRIBUTARY_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PYTHONPATH=str(REPO))
    proc = _cli(*command, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refuses to start" in lines[0] and "TRIBUTARY_CONTRIBUTOR_KEY" in lines[0]
    assert "Traceback" not in proc.stderr


def test_gunicorn_refuses_the_default_keys(tmp_path: Path) -> None:
    env = _clean_env(TRIBUTARY_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"),
         "--bind", "127.0.0.1:0", "web.app:create_app()"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0 and "refuses to start" in proc.stderr and "TRIBUTARY_SECRET_KEYS" in proc.stderr


def test_secrets_init_writes_keys_once_and_settings_read_them(tmp_path: Path) -> None:
    env = _clean_env(PYTHONPATH=str(REPO))
    assert _cli("secrets", "check", cwd=tmp_path, env=env).returncode == 1
    first = _cli("secrets", "init", cwd=tmp_path, env=env)
    assert first.returncode == 0 and "wrote new keys" in first.stdout
    keys = (tmp_path / "var" / "keys.env").read_text()
    assert (tmp_path / "var" / "keys.env").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert _cli("secrets", "init", cwd=tmp_path, env=env).stdout.startswith("keeping")
    assert (tmp_path / "var" / "keys.env").read_text() == keys
    check = _cli("secrets", "check", cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stdout
    assert keys.split("TRIBUTARY_SECRET_KEYS=")[1].split()[0] not in check.stdout + check.stderr


def test_slack_tokens_are_encrypted_at_rest_and_rotation_reencrypts_everything(
    engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old_store = EncryptedInstallationStore(client_id="111.222", engine=engine, box=SecretBox([OLD]))
    installed_at = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    old_store.save(Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U1", bot_token=TOKEN,
                                bot_id="B1", bot_user_id="UB", installed_at=installed_at))
    # A row written before encryption existed, in plain text: rotation encrypts it too.
    legacy = "xoxb-legacy-plain-token"
    run_write(engine, lambda c: c.execute(insert(slack_bots).values(
        client_id="111.222", app_id="A1", team_id="T2", bot_token=legacy, is_enterprise_install=False,
        installed_at=datetime(2026, 1, 2))))
    accounts = Accounts(engine, Ledger(engine))
    accounts.create_team("acme", plan="free")
    webhook = WebhookSecrets(engine, accounts, lambda: SecretBox([OLD])).show("acme")

    with read_transaction(engine) as conn:
        stored = conn.execute(select(slack_bots.c.bot_token).where(slack_bots.c.team_id == "T1")).scalar_one()
        installed = conn.execute(select(slack_installations.c.bot_token)).scalar_one()
    assert TOKEN not in stored and TOKEN not in installed
    assert old_store.find_bot(enterprise_id=None, team_id="T1").bot_token == TOKEN

    box = SecretBox([NEW, OLD])
    report = rotate_stored_secrets(engine, box)
    assert report.values == 4 and report.were_plain == 1  # installation, two bots, one webhook secret
    new_only = SecretBox([NEW])
    new_store = EncryptedInstallationStore(client_id="111.222", engine=engine, box=new_only)
    assert new_store.find_bot(enterprise_id=None, team_id="T1").bot_token == TOKEN
    assert new_store.find_bot(enterprise_id=None, team_id="T2").bot_token == legacy
    assert new_store.find_installation(enterprise_id=None, team_id="T1").bot_token == TOKEN
    assert WebhookSecrets(engine, accounts, lambda: new_only).secret_of(accounts.team("acme").id).secret == (
        webhook.secret
    )
    with read_transaction(engine) as conn:
        assert all(new_only.is_newest(v) for v in conn.execute(select(TeamWebhookSecret.secret_encrypted)).scalars())
    assert webhook.secret not in repr(webhook)
    for secret in (TOKEN, legacy, webhook.secret, OLD, NEW):
        assert secret not in caplog.text


@pytest.mark.parametrize("backend", ["sqlite"])  # the CLI's paths; storage is covered above on both
def test_webhook_secret_and_rotate_commands(db_url: str, tmp_path: Path) -> None:
    base = _clean_env(TRIBUTARY_DATABASE_URL=db_url, PYTHONPATH=str(REPO))
    env = {**base, "TRIBUTARY_SECRET_KEYS": OLD}
    assert _cli("teams", "create", "acme", "--plan", "free", cwd=tmp_path, env=env).returncode == 0
    shown = _cli("bounces", "webhook-secret", "acme", cwd=tmp_path, env=env)
    secret = shown.stdout.strip()
    assert shown.returncode == 0 and secret.startswith("whsec_")
    assert _cli("bounces", "webhook-secret", "acme", cwd=tmp_path, env=env).stdout.strip() == secret
    rotated = _cli("bounces", "webhook-secret", "acme", "--rotate", cwd=tmp_path, env=env).stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    # A new key first, the old one after: rotate re-encrypts; then the new key alone opens it.
    moved = _cli("secrets", "rotate", cwd=tmp_path, env={**env, "TRIBUTARY_SECRET_KEYS": f"{NEW},{OLD}"})
    assert moved.returncode == 0 and "re-encrypted 1 secret" in moved.stdout
    new_only = {**env, "TRIBUTARY_SECRET_KEYS": NEW}
    assert _cli("bounces", "webhook-secret", "acme", cwd=tmp_path, env=new_only).stdout.strip() == rotated
    # Without keys: one clear line, exit 2, no traceback.
    missing = _cli("bounces", "webhook-secret", "acme", cwd=tmp_path, env=base)
    assert missing.returncode == 2 and "TRIBUTARY_SECRET_KEYS" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
