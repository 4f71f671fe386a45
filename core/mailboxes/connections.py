"""Connect, list, mark private, opt out and disconnect members' mailboxes (the stored side).

The password is encrypted with SecretBox before it is stored and decrypted only to log in. A
disconnect deletes the connection and what only it supplied to the team's private candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from core.accounts import Accounts
from core.actors import Actor, require_manage_mailbox
from core.errors import AccessDenied, InvalidInput, NotFound
from core.mailboxes.imap import ImapAccount, ImapReader, check_security
from core.mailboxes.revoke import mailbox_source, revoke_source_in
from core.normalize.domains import registrable_domain
from core.secrets import SecretBox
from storage.db import read_transaction, run_write
from storage.models import MailboxConnection, MailboxPrivateEntry
from storage.timeutil import as_utc, utcnow

_BOX = MailboxConnection.__table__
_PRIVATE = MailboxPrivateEntry.__table__
MAX_PRIVATE_ENTRIES_PER_MEMBER = 1_000
MAX_PRIVATE_VALUE_CHARS = 320


@dataclass(frozen=True)
class MailboxInfo:
    id: int
    team_id: int
    member_id: int
    member_email: str
    host: str
    port: int
    security: str
    username: str
    folder: str
    contribute: bool
    messages_read: int
    last_synced_at: datetime | None


@dataclass(frozen=True)
class Disconnected:
    candidates_deleted: int
    candidates_trimmed: int


def private_value(text: str) -> str:
    """An address (lower-cased) or a registrable domain; InvalidInput names what is wrong."""
    value = (text or "").strip().lower()
    if not value or len(value) > MAX_PRIVATE_VALUE_CHARS:
        raise InvalidInput(f"value: give an email address or a domain (at most {MAX_PRIVATE_VALUE_CHARS} characters)")
    local, at, domain = value.rpartition("@")
    try:
        registrable = registrable_domain(domain)
    except InvalidInput:
        registrable = None
    if not registrable or (at and not local):
        raise InvalidInput(f"value: {text!r} is neither an email address nor a domain")
    return value if at else registrable


class Mailboxes:
    def __init__(self, engine: Engine, accounts: Accounts, secret_box: Callable[[], SecretBox]) -> None:
        self.engine = engine
        self.accounts = accounts
        self._box = secret_box

    def connect(
        self, actor: Actor, team: int | str, member: int | str, account: ImapAccount, *, check_login: bool = True
    ) -> MailboxInfo:
        """Store (or replace) the member's mailbox, after a read-only login proves the credentials.
        The cursor restarts (a new server or account is a new mailbox)."""
        who = self.accounts.member(member, team)
        self._allowed(actor, who.team_id, who.id)
        check_security(account.host, account.security)
        if not account.username or not account.password:
            raise InvalidInput("user and password: both are required")
        if not 0 < account.port < 65536:
            raise InvalidInput(f"port: {account.port} is not a TCP port")
        if check_login:
            with ImapReader(account) as reader:
                reader.check()
        sealed = self._box().encrypt(account.password)
        values = dict(
            host=account.host, port=account.port, security=account.security, username=account.username,
            password_encrypted=sealed, folder=account.folder, uid_validity=None, last_uid=0,
        )

        def op(conn) -> None:
            existing = conn.execute(select(_BOX.c.id).where(_BOX.c.member_id == who.id)).scalar()
            if existing is None:
                conn.execute(insert(_BOX).values(team_id=who.team_id, member_id=who.id, contribute=True,
                                                 messages_read=0, created_at=utcnow(), **values))
            else:
                conn.execute(update(_BOX).where(_BOX.c.id == existing).values(**values))

        run_write(self.engine, op)
        return self.mailbox(who.team_id, who.id)

    def mailbox(self, team: int | str, member: int | str) -> MailboxInfo:
        who = self.accounts.member(member, team)
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_BOX).where(_BOX.c.member_id == who.id)).one_or_none()
        if row is None:
            raise NotFound(f"member {who.email!r} has no connected mailbox")
        return _info(row, who.email)

    def status(self, actor: Actor, team: int | str) -> list[MailboxInfo]:
        info = self.accounts.team(team)
        if not (actor.role.value == "operator" or (actor.team_id == info.id and actor.is_admin)):
            raise AccessDenied("mailbox status: only the team's admins can list its mailboxes")
        emails = {m.id: m.email for m in self.accounts.members(info.id)}
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_BOX).where(_BOX.c.team_id == info.id).order_by(_BOX.c.id)).all()
        return [_info(r, emails.get(r.member_id, "?")) for r in rows]

    def all_ids(self) -> list[tuple[int, int]]:
        """(team id, member id) of every connected mailbox, for the periodic sync."""
        with read_transaction(self.engine) as conn:
            return [(r.team_id, r.member_id) for r in conn.execute(select(_BOX.c.team_id, _BOX.c.member_id))]

    def account(self, mailbox_id: int) -> ImapAccount:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(_BOX).where(_BOX.c.id == mailbox_id)).one()
        password = self._box().decrypt(row.password_encrypted)
        return ImapAccount(row.host, row.port, row.security, row.username, password, row.folder)

    def set_contribute(self, actor: Actor, team: int | str, member: int | str, contribute: bool) -> MailboxInfo:
        box = self.mailbox(team, member)
        self._allowed(actor, box.team_id, box.member_id)
        stmt = update(_BOX).where(_BOX.c.id == box.id).values(contribute=contribute)
        run_write(self.engine, lambda c: c.execute(stmt))
        return self.mailbox(box.team_id, box.member_id)

    def add_private(self, actor: Actor, team: int | str, member: int | str, value: str) -> str:
        who = self.accounts.member(member, team)
        self._allowed(actor, who.team_id, who.id)
        clean = private_value(value)

        def op(conn) -> None:
            entries = conn.execute(select(_PRIVATE.c.value).where(_PRIVATE.c.member_id == who.id)).scalars().all()
            if clean in entries:
                return
            if len(entries) >= MAX_PRIVATE_ENTRIES_PER_MEMBER:
                raise InvalidInput(f"value: at most {MAX_PRIVATE_ENTRIES_PER_MEMBER} private entries per member")
            conn.execute(insert(_PRIVATE).values(member_id=who.id, value=clean, created_at=utcnow()))

        run_write(self.engine, op)
        return clean

    def remove_private(self, actor: Actor, team: int | str, member: int | str, value: str) -> bool:
        who = self.accounts.member(member, team)
        self._allowed(actor, who.team_id, who.id)
        clean = private_value(value)
        stmt = delete(_PRIVATE).where(_PRIVATE.c.member_id == who.id, _PRIVATE.c.value == clean)
        return run_write(self.engine, lambda c: c.execute(stmt).rowcount) > 0

    def private_values(self, member_id: int) -> frozenset[str]:
        with read_transaction(self.engine) as conn:
            return frozenset(conn.execute(select(_PRIVATE.c.value).where(_PRIVATE.c.member_id == member_id)).scalars())

    def disconnect(self, actor: Actor, team: int | str, member: int | str) -> Disconnected:
        box = self.mailbox(team, member)
        self._allowed(actor, box.team_id, box.member_id, removal=True)

        def op(conn) -> tuple[int, int]:
            counts = revoke_source_in(conn, box.team_id, mailbox_source(box.id))
            conn.execute(delete(_BOX).where(_BOX.c.id == box.id))
            return counts

        deleted, trimmed = run_write(self.engine, op)
        return Disconnected(deleted, trimmed)

    def _allowed(self, actor: Actor, team_id: int, member_id: int, *, removal: bool = False) -> None:
        if actor.team_id is not None and actor.team_id != team_id:
            raise AccessDenied("mailbox: that member is in another team")
        require_manage_mailbox(actor, member_id, removal=removal)


def _info(row, email: str) -> MailboxInfo:
    return MailboxInfo(
        id=row.id, team_id=row.team_id, member_id=row.member_id, member_email=email, host=row.host, port=row.port,
        security=row.security, username=row.username, folder=row.folder, contribute=row.contribute,
        messages_read=row.messages_read, last_synced_at=as_utc(row.last_synced_at) if row.last_synced_at else None,
    )


__all__ = ["Disconnected", "MailboxInfo", "Mailboxes", "private_value"]
