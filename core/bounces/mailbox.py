"""Poll the bounce mailbox over IMAP (imap-tools) and feed every unseen message to intake.

A message is flagged \\Seen only after intake has stored it (parsed or kept as unparseable), so a
poller that dies mid-way leaves it unseen and the next poll takes it again; intake is idempotent,
so taking it twice changes nothing.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime

from imap_tools import AND, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessageFlags
from imap_tools.errors import ImapToolsError, MailboxFetchError, MailboxLoginError
from imap_tools.utils import check_command_status
from pydantic import SecretStr

from core.bounces.intake import BounceIntakeService, IntakeSource, IntakeStatus
from core.errors import TributaryError
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_POLL = 500


class MailboxError(TributaryError):
    pass


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    security: str  # ssl | starttls | none
    user: str
    password: SecretStr
    folder: str = "INBOX"
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MailboxConfig | None:
        """None when no bounce mailbox is configured."""
        if not settings.bounce_imap_host:
            return None
        if not settings.bounce_imap_user or settings.bounce_imap_password is None:
            raise MailboxError("bounce mailbox: TRIBUTARY_BOUNCE_IMAP_USER and _PASSWORD must be set with _HOST")
        return cls(
            host=settings.bounce_imap_host,
            port=settings.bounce_imap_port,
            security=settings.bounce_imap_security,
            user=settings.bounce_imap_user,
            password=settings.bounce_imap_password,
            folder=settings.bounce_imap_folder,
            timeout_s=settings.bounce_imap_timeout_s,
        )


@dataclass(frozen=True)
class PollResult:
    fetched: int
    stored: int  # new intake rows
    duplicates: int  # messages whose bytes had arrived before
    unparseable: int
    bounces: int  # bounce rows the messages named (new or not)
    skipped: str | None = None  # why nothing was polled (not configured, another worker polling)


def poll_mailbox(
    config: MailboxConfig,
    intake: BounceIntakeService,
    *,
    now: datetime | None = None,
    limit: int = MAX_MESSAGES_PER_POLL,
    ssl_context: ssl.SSLContext | None = None,
) -> PollResult:
    fetched = stored = duplicates = unparseable = bounces = 0
    try:
        with _open(config, ssl_context).login(config.user, config.password.get_secret_value(), config.folder) as box:
            uids = box.uids(AND(seen=False))[:limit]
            for uid in uids:
                raw = _fetch_raw(box, uid)
                if raw is None:
                    continue  # expunged by someone else since the search
                fetched += 1
                result = intake.ingest_message(
                    raw, source=IntakeSource.IMAP, source_ref=f"{config.folder}/{uid}", now=now
                )
                stored += not result.duplicate
                duplicates += result.duplicate
                unparseable += result.status == IntakeStatus.UNPARSEABLE
                bounces += len(result.bounce_ids)
                box.flag(uid, MailMessageFlags.SEEN, True)
    except MailboxLoginError:
        raise MailboxError(f"bounce mailbox {config.host}:{config.port}: login refused for {config.user!r}") from None
    except ImapToolsError as exc:
        raise MailboxError(f"bounce mailbox {config.host}:{config.port}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise MailboxError(f"bounce mailbox {config.host}:{config.port}: {type(exc).__name__}: {exc}") from None
    log.info("bounce mailbox: %s fetched, %s new, %s duplicate, %s unparseable", fetched, stored, duplicates,
             unparseable)
    return PollResult(fetched, stored, duplicates, unparseable, bounces)


def _open(config: MailboxConfig, context: ssl.SSLContext | None):
    if config.security == "ssl":
        return MailBox(config.host, config.port, timeout=config.timeout_s, ssl_context=context)
    if config.security == "starttls":
        return MailBoxStartTls(config.host, config.port, timeout=config.timeout_s, ssl_context=context)
    if config.security == "none":
        return MailBoxUnencrypted(config.host, config.port, timeout=config.timeout_s)
    raise MailboxError(f"bounce mailbox security: {config.security!r} is not ssl, starttls or none")


def _fetch_raw(box, uid: str) -> bytes | None:
    """The message exactly as stored (imap-tools' MailMessage keeps only the parsed object)."""
    result = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
    check_command_status(result, MailboxFetchError)
    for item in result[1]:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


__all__ = ["MailboxConfig", "MailboxError", "PollResult", "poll_mailbox"]
