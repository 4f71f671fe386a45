"""Requests signed exactly as Slack signs them: v0 HMAC-SHA256 of "v0:{timestamp}:{body}"."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import requests


def signature(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


class SlackSender:
    """Posts commands, button presses and events to the app's /slack/events URL."""

    def __init__(self, events_url: str, secret: str) -> None:
        self.events_url = events_url
        self.secret = secret
        self.session = requests.Session()

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        retry_num: int | None = None,
    ) -> requests.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature(secret or self.secret, ts, body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return self.session.post(self.events_url, data=body.encode(), headers=headers, timeout=10)

    def command(self, text: str, *, user: str, team: str = "T1", response_url: str, **kw) -> requests.Response:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": team,
                "team_domain": "test",
                "channel_id": "C1",
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/tributary",
                "text": text,
                "api_app_id": "A1",
                "response_url": response_url,
                "trigger_id": "1.2.3",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def press(
        self, action_id: str, value: str, *, user: str, team: str = "T1", response_url: str, **kw
    ) -> requests.Response:
        payload = {
            "type": "block_actions",
            "team": {"id": team, "domain": "test"},
            "user": {"id": user, "team_id": team, "username": user.lower()},
            "api_app_id": "A1",
            "token": "legacy",
            "container": {"type": "message", "message_ts": "1.1", "channel_id": "C1", "is_ephemeral": True},
            "trigger_id": "1.2.3",
            "channel": {"id": "C1", "name": "general"},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "type": "button",
                    "text": {"type": "plain_text", "text": "x"},
                    "action_ts": "1.2",
                }
            ],
        }
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kw)

    def home_opened(self, *, user: str, team: str = "T1", **kw) -> requests.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team,
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": f"Ev{time.time_ns()}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
                "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
            }
        )
        return self.post(body, "application/json", **kw)
