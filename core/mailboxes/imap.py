"""Read a member's mailbox over IMAP, read-only: EXAMINE (never SELECT), BODY.PEEK (never \\Seen).

Per message only the header and the first MAX_FETCH_TEXT_BYTES of the body are fetched: enough for
the newest reply's signature and a small invitation, not the attachments. New messages are those
above the stored last UID under the same UIDVALIDITY; a changed UIDVALIDITY starts over.
TLS (implicit or STARTTLS) by default; plain text only to a loopback address (tests, a local bridge).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxFetchError, MailboxLoginError
from imap_tools.utils import check_command_status

from core.errors import InvalidInput, TributaryError

MAX_FETCH_TEXT_BYTES = 64 * 1024
FETCH_BATCH = 50  # messages per UID FETCH command
IMAP_TIMEOUT_S = 30.0
SECURITIES = ("ssl", "starttls", "plain")
_UID = re.compile(rb"UID (\d+)")
_START = re.compile(rb"^\d+ \(")


class MailboxUnreachable(TributaryError):
    exit_code = 1  # the server, not the command line, is at fault


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    security: str  # ssl | starttls | plain
    username: str
    password: str
    folder: str = "INBOX"

    def __repr__(self) -> str:  # the password never reaches a log or a traceback
        return f"ImapAccount({self.username!r}@{self.host}:{self.port}, {self.security})"


@dataclass(frozen=True)
class FolderState:
    uid_validity: int
    new_uids: tuple[int, ...]


def check_security(host: str, security: str) -> None:
    """Plain IMAP sends the password in clear: only to this machine."""
    if security not in SECURITIES:
        raise InvalidInput(f"security: {security!r} is not one of {', '.join(SECURITIES)}")
    if security == "plain" and not is_loopback(host):
        raise InvalidInput(
            f"host: plain IMAP is allowed only to a loopback address, not {host!r}; use --ssl or --starttls"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapReader:
    """One read-only session. Use as a context manager."""

    def __init__(self, account: ImapAccount, ssl_context: ssl.SSLContext | None = None) -> None:
        check_security(account.host, account.security)
        self.account = account
        self._ssl_context = ssl_context
        self._box = None

    def __enter__(self) -> ImapReader:
        a = self.account
        try:
            if a.security == "ssl":
                box = MailBox(a.host, a.port, timeout=IMAP_TIMEOUT_S, ssl_context=self._ssl_context)
            elif a.security == "starttls":
                box = MailBoxStartTls(a.host, a.port, timeout=IMAP_TIMEOUT_S, ssl_context=self._ssl_context)
            else:
                box = MailBoxUnencrypted(a.host, a.port, timeout=IMAP_TIMEOUT_S)
            self._box = box.login(a.username, a.password, initial_folder=None)
        except MailboxLoginError:
            raise MailboxUnreachable(f"mailbox {a.host}:{a.port}: login refused for {a.username!r}") from None
        except (ImapToolsError, OSError, ssl.SSLError) as exc:
            raise MailboxUnreachable(f"mailbox {a.host}:{a.port}: {type(exc).__name__}: {exc}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._box is not None:
            try:
                self._box.logout()
            except (ImapToolsError, OSError):
                pass

    def check(self) -> None:
        """The login worked (on entering) and the folder exists."""
        try:
            self._box.folder.status(self.account.folder, ["UIDVALIDITY"])
        except (ImapToolsError, OSError) as exc:
            raise MailboxUnreachable(f"mailbox folder {self.account.folder!r}: {type(exc).__name__}: {exc}") from None

    def folder_state(self, uid_validity: int | None, last_uid: int) -> FolderState:
        """EXAMINE the folder; the UIDs above `last_uid` (all of them if UIDVALIDITY changed)."""
        box = self._box
        try:
            status = box.folder.status(self.account.folder, ["UIDVALIDITY"])
            box.folder.set(self.account.folder, readonly=True)
            current = int(status["UIDVALIDITY"])
            start = last_uid if uid_validity == current else 0
            uids = sorted(int(u) for u in box.uids(f"UID {start + 1}:*"))
        except (ImapToolsError, OSError, KeyError, ValueError) as exc:
            raise MailboxUnreachable(f"mailbox folder {self.account.folder!r}: {type(exc).__name__}: {exc}") from None
        return FolderState(current, tuple(u for u in uids if u > start))

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, header + the first bytes of the body) per message, in batches; nothing is flagged."""
        for i in range(0, len(uids), FETCH_BATCH):
            batch = uids[i : i + FETCH_BATCH]
            query = f"(UID BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.{MAX_FETCH_TEXT_BYTES}>)"
            try:
                result = self._box.client.uid("FETCH", ",".join(map(str, batch)), query)
                check_command_status(result, MailboxFetchError)
            except (ImapToolsError, OSError) as exc:
                raise MailboxUnreachable(f"mailbox fetch: {type(exc).__name__}: {exc}") from None
            yield from _messages(result[1])


def _messages(items: list) -> Iterator[tuple[int, bytes]]:
    """Group a FETCH response's literals by message: a message starts at "<seq> (", and its UID is
    in one of its non-literal pieces (servers put it first or last)."""
    uid: int | None = None
    parts: list[bytes] = []
    started = False
    for item in items:
        head = item[0] if isinstance(item, tuple) else item
        if not isinstance(head, bytes):
            continue
        if _START.match(head):
            if started and uid is not None:
                yield uid, b"".join(parts)
            uid, parts, started = None, [], True
        found = _UID.search(head)
        if found and uid is None:
            uid = int(found.group(1))
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            parts.append(item[1])
    if started and uid is not None:
        yield uid, b"".join(parts)


__all__ = ["FolderState", "ImapAccount", "ImapReader", "MailboxUnreachable", "check_security", "is_loopback"]
