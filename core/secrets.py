"""Secrets at rest, and the keys production must set before it starts.

SecretBox encrypts tokens (Slack bot tokens, team webhook secrets, mailbox passwords) with `cryptography`'s
MultiFernet: TRIBUTARY_SECRET_KEYS is a comma-separated list of Fernet keys, newest first. New
values are encrypted with the newest; any listed key decrypts; `tributary secrets rotate`
re-encrypts every stored secret under the newest, after which old keys can be dropped.
Nothing here logs or returns a key or a plain secret in an error message.

`production_problems` lists what is unsafe in a configuration (a default or missing key); `serve`,
`worker` and gunicorn refuse to start on any of them unless TRIBUTARY_DEVELOPMENT is set. The
embedded demo (`make run`) gets real keys from `tributary secrets init`, which writes ./var/keys.env
on first run.
"""

from __future__ import annotations

import os
import secrets as stdlib_secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine, Table, select, update

from core.errors import TributaryError
from core.settings import DEV_CONTRIBUTOR_KEY, Settings
from storage.db import run_write
from storage.models import (
    CrmConnection,
    MailboxConnection,
    SheetsJob,
    TeamWebhookSecret,
    slack_bots,
    slack_installations,
)
from storage.models.slack import TOKEN_COLUMNS

MIN_KEY_CHARS = 32  # contributor and VERP keys: at least this many characters of randomness


class SecretsError(TributaryError):
    pass


class InsecureConfiguration(TributaryError):
    pass


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretsError("TRIBUTARY_SECRET_KEYS is not set: no key to encrypt secrets with")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise SecretsError(
                    f"TRIBUTARY_SECRET_KEYS: key {position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with `tributary secrets generate-key`)"
                ) from None
        self._box = MultiFernet(fernets)
        self._newest = fernets[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(settings.secret_key_list())

    def encrypt(self, plain: str) -> str:
        return self._box.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._box.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretsError("a stored secret cannot be decrypted with any key in TRIBUTARY_SECRET_KEYS") from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the newest key (a no-op in meaning)."""
        try:
            return self._box.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretsError("a stored secret cannot be decrypted with any key in TRIBUTARY_SECRET_KEYS") from None

    def seal(self, value: str) -> str:
        """`value` encrypted, unless it already is (a token any of our keys opens)."""
        return value if self.opens(value) else self.encrypt(value)

    def opens(self, value: str) -> bool:
        try:
            self._box.decrypt(value.encode("ascii"))
            return True
        except (InvalidToken, UnicodeEncodeError):
            return False

    def is_newest(self, token: str) -> bool:
        try:
            self._newest.decrypt(token.encode("ascii"))
            return True
        except (InvalidToken, UnicodeEncodeError):
            return False


@dataclass(frozen=True)
class RotationReport:
    values: int  # secrets now encrypted under the newest key
    were_plain: int  # of which were stored in plain text before (written before encryption existed)


def _encrypted_columns() -> list[tuple[Table, str, list[str]]]:
    """(table, primary key column, secret columns) of every secret stored at rest."""
    return [
        (slack_installations, "id", [c for c in TOKEN_COLUMNS if c in slack_installations.c]),
        (slack_bots, "id", [c for c in TOKEN_COLUMNS if c in slack_bots.c]),
        (TeamWebhookSecret.__table__, "team_id", ["secret_encrypted"]),
        (CrmConnection.__table__, "id", ["token_encrypted"]),
        (MailboxConnection.__table__, "id", ["password_encrypted"]),
        (SheetsJob.__table__, "job_id", ["token_encrypted"]),  # a Sheets job's OAuth token, while it runs
    ]


def rotate_stored_secrets(engine: Engine, box: SecretBox) -> RotationReport:
    """Re-encrypt every stored secret under the newest key (and encrypt any still in plain text)."""
    values = were_plain = 0
    for table, key, columns in _encrypted_columns():
        for column in columns:
            done, plain = run_write(engine, lambda conn, t=table, k=key, c=column: _rotate_column(conn, box, t, k, c))
            values += done
            were_plain += plain
    return RotationReport(values, were_plain)


def _rotate_column(conn: Connection, box: SecretBox, table: Table, key: str, column: str) -> tuple[int, int]:
    rows = conn.execute(select(table.c[key], table.c[column]).where(table.c[column].is_not(None))).all()
    plain = 0
    for row_key, value in rows:
        opened = box.opens(value)
        plain += not opened
        fresh = box.rotate(value) if opened else box.encrypt(value)
        conn.execute(update(table).where(table.c[key] == row_key).values({column: fresh}))
    return len(rows), plain


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def production_problems(settings: Settings) -> list[str]:
    """Why this configuration must not serve real users (empty: fine)."""
    problems = []
    contributor = settings.contributor_key.get_secret_value()
    if contributor == DEV_CONTRIBUTOR_KEY or len(contributor) < MIN_KEY_CHARS:
        problems.append("TRIBUTARY_CONTRIBUTOR_KEY is the development default (or shorter than 32 characters)")
    if not settings.secret_key_list():
        problems.append("TRIBUTARY_SECRET_KEYS is not set (Fernet keys for tokens at rest)")
    else:
        try:
            SecretBox.from_settings(settings)
        except SecretsError as exc:
            problems.append(str(exc))
    verp = settings.verp_key.get_secret_value() if settings.verp_key else ""
    if not verp.strip() or any(len(k.strip()) < MIN_KEY_CHARS for k in verp.split(",") if k.strip()):
        problems.append("TRIBUTARY_VERP_KEY is not set (or a key in it is shorter than 32 characters)")
    return problems


def require_production_keys(settings: Settings, what: str) -> None:
    """Refuse to start `what` with unsafe keys, unless TRIBUTARY_DEVELOPMENT says this is a dev box."""
    if settings.development:
        return
    problems = production_problems(settings)
    if problems:
        raise InsecureConfiguration(
            f"{what} refuses to start: {'; '.join(problems)}. Set them (see README, Security), or run "
            "`tributary secrets init` for a local demo, or set TRIBUTARY_DEVELOPMENT=true on a development machine"
        )


def init_keys_file(path: Path) -> bool:
    """Write fresh keys to `path` (an env file settings read) unless it exists. True if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated by `tributary secrets init` for this machine; keep it out of version control.",
        f"TRIBUTARY_SECRET_KEYS={generate_key()}",
        f"TRIBUTARY_CONTRIBUTOR_KEY={stdlib_secrets.token_urlsafe(48)}",
        f"TRIBUTARY_VERP_KEY={stdlib_secrets.token_urlsafe(48)}",
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return True


__all__ = [
    "InsecureConfiguration",
    "RotationReport",
    "rotate_stored_secrets",
    "SecretBox",
    "SecretsError",
    "generate_key",
    "init_keys_file",
    "production_problems",
    "require_production_keys",
]
