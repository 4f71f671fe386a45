"""Authorization that survives Slack's Web API being unreachable.

bolt authorizes each request with `auth.test` (once per token with the cache) before the listener
may ack. When Slack's Web API cannot be reached, the connection error escaped bolt's middleware and
a correctly signed command got a 500, although its signature had already proven it came from Slack.
Here that case falls back to what we know without Slack (the token of this workspace, and in
multi-workspace mode the bot user id the installation stored), so the command is acknowledged and
runs; calls that need Slack fail in the lazy listener, where they are logged (and answered, if the
response URL is reachable). The next request tries `auth.test` again.
"""

from __future__ import annotations

import logging

from slack_bolt import BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_sdk.oauth.installation_store import InstallationStore

log = logging.getLogger(__name__)


class SingleTeamAuthorize(Authorize):
    """Single-workspace mode: auth.test once (cached); when Slack cannot be reached, the bot token alone."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self._cached: AuthorizeResult | None = None

    def __call__(self, *, context: BoltContext, enterprise_id, team_id, user_id, **_actor) -> AuthorizeResult:
        if self._cached is None:
            try:
                self._cached = AuthorizeResult.from_auth_test_response(
                    auth_test_response=context.client.auth_test(token=self.token), bot_token=self.token
                )
            except OSError as exc:  # URLError, refused, timed out: Slack unreachable, not a bad token
                log.warning("Slack Web API unreachable (auth.test: %s): acknowledging without it", exc)
                return AuthorizeResult(
                    enterprise_id=enterprise_id, team_id=team_id, bot_token=self.token, user_id=user_id
                )
        cached = self._cached
        return AuthorizeResult(
            enterprise_id=cached.enterprise_id or enterprise_id,
            team_id=cached.team_id or team_id,
            bot_user_id=cached.bot_user_id,
            bot_id=cached.bot_id,
            bot_token=self.token,
            user_id=user_id,
        )


class ReachableOrStoredAuthorize(Authorize):
    """Multi-workspace mode: bolt's installation-store authorize; when Slack cannot be reached, the
    installation's stored bot token and bot user id."""

    def __init__(self, inner: Authorize, store: InstallationStore) -> None:
        super().__init__()
        self.inner = inner
        self.store = store

    def __call__(self, *, context: BoltContext, enterprise_id, team_id, user_id, **actor) -> AuthorizeResult | None:
        try:
            return self.inner(context=context, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, **actor)
        except OSError as exc:
            log.warning("Slack Web API unreachable (auth.test: %s): acknowledging with the stored installation", exc)
        bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None  # not installed: bolt answers with the "not installed" message
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            user_id=user_id,
        )
