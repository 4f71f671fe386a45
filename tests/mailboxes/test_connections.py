"""Who may connect, sync, mark private and disconnect a mailbox; the password at rest."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from core.actors import Actor, Channel, Role
from core.errors import AccessDenied, InvalidInput
from core.mailboxes.imap import ImapAccount
from core.secrets import SecretBox, generate_key, rotate_stored_secrets
from storage.models import MailboxConnection
from tests.mailboxes.helpers import SECRET_KEYS, rows, services_for

ACCOUNT = ImapAccount("127.0.0.1", 1, "plain", "rep", "hunter2-imap")


def _actor(svc, team: str, email: str) -> Actor:
    m = svc.accounts.member(email, team)
    return Actor(m.team_id, m.id, m.role, Channel.API)


def test_only_the_member_or_the_operator_connects_and_an_admin_may_disconnect(engine, db_url, tmp_path) -> None:
    svc = services_for(engine, db_url, tmp_path)
    svc.accounts.create_team("alpha")
    svc.accounts.add_member("alpha", "rep@alpha.test")
    svc.accounts.add_member("alpha", "other@alpha.test")
    svc.accounts.add_member("alpha", "boss@alpha.test", role=Role.ADMIN)
    svc.accounts.create_team("beta")
    svc.accounts.add_member("beta", "boss@beta.test", role=Role.ADMIN)
    rep, other = _actor(svc, "alpha", "rep@alpha.test"), _actor(svc, "alpha", "other@alpha.test")
    boss, stranger = _actor(svc, "alpha", "boss@alpha.test"), _actor(svc, "beta", "boss@beta.test")
    for who in (other, boss, stranger):
        with pytest.raises(AccessDenied):
            svc.mailboxes.connect(who, "alpha", "rep@alpha.test", ACCOUNT, check_login=False)
    svc.mailboxes.connect(rep, "alpha", "rep@alpha.test", ACCOUNT, check_login=False)
    for who in (other, boss, stranger):
        with pytest.raises(AccessDenied):
            svc.mailboxes.add_private(who, "alpha", "rep@alpha.test", "x.test")
    with pytest.raises(AccessDenied):
        svc.mailboxes.disconnect(other, "alpha", "rep@alpha.test")
    with pytest.raises(AccessDenied):
        svc.mailboxes.disconnect(stranger, "alpha", "rep@alpha.test")
    with pytest.raises(AccessDenied):
        svc.mailboxes.status(rep, "alpha")
    assert [b.member_email for b in svc.mailboxes.status(boss, "alpha")] == ["rep@alpha.test"]
    svc.mailboxes.disconnect(boss, "alpha", "rep@alpha.test")
    assert svc.mailboxes.status(boss, "alpha") == []


def test_plain_imap_only_to_loopback_and_bad_values_are_named(engine, db_url, tmp_path) -> None:
    svc = services_for(engine, db_url, tmp_path)
    svc.accounts.create_team("alpha")
    svc.accounts.add_member("alpha", "rep@alpha.test")
    op = Actor.operator()
    with pytest.raises(InvalidInput, match="loopback"):
        svc.mailboxes.connect(op, "alpha", "rep@alpha.test", ImapAccount("imap.example.com", 143, "plain", "u", "p"))
    with pytest.raises(InvalidInput, match="security"):
        svc.mailboxes.connect(op, "alpha", "rep@alpha.test", ImapAccount("127.0.0.1", 143, "tls", "u", "p"))
    with pytest.raises(InvalidInput, match="port"):
        svc.mailboxes.connect(op, "alpha", "rep@alpha.test", ImapAccount("127.0.0.1", 0, "plain", "u", "p"),
                              check_login=False)
    for bad in ("", "no spaces allowed", "@acme.test"):
        with pytest.raises(InvalidInput, match="value"):
            svc.mailboxes.add_private(op, "alpha", "rep@alpha.test", bad)
    assert svc.mailboxes.add_private(op, "alpha", "rep@alpha.test", "https://www.Acme.test/about") == "acme.test"


def test_the_password_is_encrypted_and_rotates_with_the_other_secrets(engine, db_url, tmp_path) -> None:
    svc = services_for(engine, db_url, tmp_path)
    svc.accounts.create_team("alpha")
    svc.accounts.add_member("alpha", "rep@alpha.test")
    svc.mailboxes.connect(Actor.operator(), "alpha", "rep@alpha.test", ACCOUNT, check_login=False)
    [row] = rows(engine, MailboxConnection.__table__)
    assert "hunter2" not in row.password_encrypted
    newer = generate_key()
    box = SecretBox([newer, SECRET_KEYS])
    assert rotate_stored_secrets(engine, box).values >= 1
    [row] = rows(engine, MailboxConnection.__table__)
    assert box.is_newest(row.password_encrypted)
    rotated = services_for(engine, db_url, tmp_path, secret_keys=SecretStr(newer))
    assert rotated.mailboxes.account(row.id).password == "hunter2-imap"
