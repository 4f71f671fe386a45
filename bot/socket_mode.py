"""Socket Mode: the same bolt App over Slack's WebSocket, for trying the bot without a public URL.

Single-workspace only (a bot token), plus an app-level token (xapp-…, scope connections:write).
"""

from __future__ import annotations

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import SlackNotConfigured, create_bolt_app
from core.services import Services


def socket_mode_handler(services: Services) -> SocketModeHandler:
    settings = services.settings
    if not settings.slack_app_token or not settings.slack_bot_token:
        raise SlackNotConfigured(
            "Socket Mode: set TRIBUTARY_SLACK_BOT_TOKEN (xoxb-…) and TRIBUTARY_SLACK_APP_TOKEN (xapp-…)"
        )
    app = create_bolt_app(services, settings, socket_mode=True)
    return SocketModeHandler(app, app_token=settings.slack_app_token)
