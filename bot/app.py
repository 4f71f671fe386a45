"""The bolt App factory: configuration in, listeners registered, App out.

Modes, chosen by settings:
- multi-workspace (TRIBUTARY_SLACK_CLIENT_ID/SECRET): OAuth install; installations and OAuth states
  in our database through slack_sdk's SQLAlchemy stores (tables made by migration 0008_slack);
- single-workspace (TRIBUTARY_SLACK_BOT_TOKEN): one bot token, no OAuth.
Either way TRIBUTARY_SLACK_SIGNING_SECRET verifies every request (Socket Mode needs no secret).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot import accounts, commands, contacts, home, interactive
from bot.offline_authorize import ReachableOrStoredAuthorize, SingleTeamAuthorize
from bot.tokens import WEB_API_TIMEOUT_S, installation_store
from core.errors import TributaryError
from core.services import Services
from core.settings import Settings

BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", "users:read.email", "files:write")
OAUTH_STATE_EXPIRATION_S = 600
NOT_INSTALLED = ":warning: Tributary is not installed in this workspace: an admin installs it from /slack/install."


class SlackNotConfigured(TributaryError):
    pass


def is_configured(settings: Settings) -> bool:
    return bool(settings.slack_signing_secret) and bool(
        settings.slack_bot_token or (settings.slack_client_id and settings.slack_client_secret)
    )


def create_bolt_app(services: Services, settings: Settings, *, socket_mode: bool = False) -> App:
    if not socket_mode and not settings.slack_signing_secret:
        raise SlackNotConfigured("Slack: set TRIBUTARY_SLACK_SIGNING_SECRET")
    # The token (single-workspace mode) rides on the client: bolt ignores `token=` when given a client.
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=WEB_API_TIMEOUT_S)
    common = dict(
        name="tributary",
        signing_secret=settings.slack_signing_secret or "",
        client=client,
        # Every listener is ack + lazy: the ack function is cheap (no database, no Web API), so it runs
        # inline in the request thread. With False bolt would queue it on the executor behind the lazy
        # work and poll for it in 10 ms sleeps; that queueing was most of the ack latency under load.
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=settings.slack_lazy_threads, thread_name_prefix="slack-lazy"),
        request_verification_enabled=not socket_mode,
        user_facing_authorize_error_message=NOT_INSTALLED,
    )
    if settings.slack_bot_token:
        # No auth.test at start-up: the web app must boot even when Slack is unreachable; nor may a
        # request fail for it (bot/offline_authorize.py).
        app = App(token_verification_enabled=False, authorize=SingleTeamAuthorize(settings.slack_bot_token), **common)
    elif settings.slack_client_id and settings.slack_client_secret:
        store = installation_store(services, settings)
        oauth_settings = OAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            installation_store=store,
            state_store=SQLAlchemyOAuthStateStore(expiration_seconds=OAUTH_STATE_EXPIRATION_S, engine=services.engine),
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
        )
        # bolt's default authorize would call auth.test on Slack for every request, before the ack;
        # cache_enabled keeps each bot token's auth.test result (the installation is still read each time,
        # so an uninstalled workspace stops working at once).
        authorize = InstallationStoreAuthorize(
            logger=logging.getLogger("slack_bolt.authorize"),
            installation_store=store,
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            cache_enabled=True,
            client=client,
        )
        app = App(
            installation_store=store,
            authorize=ReachableOrStoredAuthorize(authorize, store),
            oauth_flow=OAuthFlow(client=client, settings=oauth_settings),
            **common,
        )
    else:
        raise SlackNotConfigured(
            "Slack: set TRIBUTARY_SLACK_BOT_TOKEN (one workspace) or TRIBUTARY_SLACK_CLIENT_ID and "
            "TRIBUTARY_SLACK_CLIENT_SECRET (OAuth, many workspaces)"
        )
    commands.register(app, services)
    interactive.register(app, services)
    home.register(app, services)
    contacts.register(app, services)
    accounts.register(app, services)
    return app
