"""Shared pieces of the mailbox tests: a Tributary world on the test database, IMAP delivery, a scan
of every table for text that must never be stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from imap_tools import MailBoxUnencrypted
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from core.actors import Actor
from core.mailboxes.imap import ImapAccount
from core.services import Services
from core.settings import Settings
from tests.mailpeers.imap import IMAP_PASSWORD, IMAP_USER, RunningImap

SECRET_KEYS = "xVxSyaiLmID3ugCdbZCZb1jhwXgiJzGnOlbMwko6_B4="
OPERATOR = Actor.operator()


@dataclass
class Replies:
    seen: list[tuple[str, str | None, tuple[str, ...], datetime | None]] = field(default_factory=list)

    def __call__(self, from_address, in_reply_to, references, received_at) -> None:
        self.seen.append((from_address, in_reply_to, references, received_at))


def services_for(engine: Engine, db_url: str, tmp_path: Path, **extra) -> Services:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        huey_sqlite_path=str(tmp_path / "huey.db"),
        huey_name=f"test-{uuid.uuid4().hex[:12]}",
        secret_keys=extra.pop("secret_keys", SecretStr(SECRET_KEYS)),
        mailbox_mx_lookups_per_sync=extra.pop("mailbox_mx_lookups_per_sync", 0),
        **extra,
    )
    return Services(settings=settings, engine=engine)


def team_with_member(svc: Services, name: str, member: str = "rep@ourteam.test", *, contribute: bool = True) -> str:
    svc.accounts.create_team(name, plan="free")
    svc.accounts.add_member(name, member)
    if not contribute:
        svc.accounts.set_contribute(name, False)
    return member


def connect(svc: Services, team: str, member: str, imap: RunningImap) -> None:
    account = ImapAccount(imap.host, imap.port, "plain", IMAP_USER, IMAP_PASSWORD)
    svc.mailboxes.connect(OPERATOR, team, member, account)


def deliver_all(imap: RunningImap, messages: list[bytes]) -> None:
    with MailBoxUnencrypted(imap.host, imap.port, timeout=30).login(IMAP_USER, IMAP_PASSWORD) as box:
        for raw in messages:
            box.append(raw, "INBOX")


def text_of_every_table(engine: Engine) -> str:
    """Every value of every table, as one text (what a leak scan reads)."""
    chunks = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                chunks.append(json.dumps([v if isinstance(v, str | int | float | dict | list) or v is None
                                          else str(v) for v in row], default=str))
    return "\n".join(chunks)


def rows(engine: Engine, table, *where) -> list:
    with engine.connect() as conn:
        return conn.execute(select(table).where(*where)).all()
