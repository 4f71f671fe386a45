"""A Web API client speaking as the bot in the workspace(s) of a Tributary team.

Used by deliveries that start from our side (refund notices, digests) rather than from a Slack
request: the token comes from the single-workspace setting or from slack_sdk's installation store.

The installation store keeps tokens encrypted (core.secrets.SecretBox): slack_sdk's SQLAlchemy store
with its tokens sealed on the way in and opened on the way out; nothing else changes.
"""

from __future__ import annotations

import copy

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from core.secrets import SecretBox
from core.services import Services
from core.settings import Settings
from storage.models.slack import TOKEN_COLUMNS

# In-call retries: 429s wait for Retry-After, 5xx back off. What still fails is rescheduled by the caller.
MAX_RETRIES_PER_CALL = 2
WEB_API_TIMEOUT_S = 10


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's store, with bot/user tokens and refresh tokens encrypted at rest."""

    def __init__(self, *, client_id: str, engine, box: SecretBox) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self._box = box

    def _sealed(self, entity):
        sealed = copy.copy(entity)
        for name in TOKEN_COLUMNS:
            value = getattr(sealed, name, None)
            if value:
                setattr(sealed, name, self._box.seal(value))
        return sealed

    def _opened(self, entity):
        for name in TOKEN_COLUMNS:
            value = getattr(entity, name, None)
            if value:
                setattr(entity, name, self._box.decrypt(value))
        return entity

    def save(self, installation: Installation) -> None:
        super().save(self._sealed(installation))  # its save_bot sees sealed tokens and keeps them

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._sealed(bot))

    def build_installation_entity(self, row) -> Installation:  # type: ignore[override]
        return self._opened(super().build_installation_entity(row))

    def build_bot_entity(self, row) -> Bot:  # type: ignore[override]
        return self._opened(super().build_bot_entity(row))


def installation_store(services: Services, settings: Settings) -> SQLAlchemyInstallationStore | None:
    if not settings.slack_client_id:
        return None
    box = services.secret_box
    return EncryptedInstallationStore(client_id=settings.slack_client_id, engine=services.engine, box=box)


def web_client(settings: Settings, token: str | None) -> WebClient:
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=WEB_API_TIMEOUT_S,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES_PER_CALL),  # slack_sdk's default, kept
            RateLimitErrorRetryHandler(max_retry_count=MAX_RETRIES_PER_CALL),
            ServerErrorRetryHandler(max_retry_count=MAX_RETRIES_PER_CALL),
        ],
    )


def bot_clients_for_team(services: Services, settings: Settings, team_id: int) -> list[WebClient]:
    """One client per Slack workspace connected to the team (single-workspace mode: the one token)."""
    workspaces = services.identities.workspaces_of(team_id)
    if not workspaces:
        return []
    if settings.slack_bot_token:
        return [web_client(settings, settings.slack_bot_token)]
    store = installation_store(services, settings)
    if store is None:
        return []
    clients = []
    for slack_team_id in workspaces:
        bot = store.find_bot(enterprise_id=None, team_id=slack_team_id)
        if bot is not None and bot.bot_token:
            clients.append(web_client(settings, bot.bot_token))
    return clients
