"""Issue 12 item 14: a correctly signed command while Slack's Web API cannot be reached is
acknowledged (it used to get a 500: bolt's auth.test raised a connection error before the ack) and
runs; the reply reaches the user through the response URL."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from core.services import Services
from tests.bot.conftest import SECRET, make_settings, seed, serve
from tests.bot.test_slack_requests import responses, text_of
from tests.slackapi.server import SlackApiServer
from tests.slackapi.signing import SlackSender


def _closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def offline(db_url: str, slack_api: SlackApiServer) -> Iterator[tuple[Services, SlackSender]]:
    # The Web API is down; the loopback Slack still takes the response URL posts (so we see replies).
    dead_api = f"http://127.0.0.1:{_closed_port()}/api/"
    services = Services.from_settings(make_settings(db_url, slack_api, slack_api_url=dead_api))
    seed(services)
    for url in serve(services):
        yield services, SlackSender(f"{url}/slack/events", SECRET)
    services.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])  # front-end behaviour; the storage suites cover both databases
def test_signed_command_is_acknowledged_while_slack_api_is_unreachable(offline, slack_api: SlackApiServer) -> None:
    services, sender = offline
    # A linked user: the command needs no Web API call at all, and is answered in full.
    response = sender.command("credits", user="UPOOR", team="TPOOR", response_url=slack_api.response_url("poor"))
    assert response.status_code == 200, response.text
    [reply] = responses(_World(slack_api), "poor")
    assert "0 credits available" in text_of(reply)
    # An unlinked user would be matched by profile email (users.info, unreachable): still no 500.
    response = sender.command("credits", user="UREP", response_url=slack_api.response_url("rep"))
    assert response.status_code == 200, response.text
    [reply] = responses(_World(slack_api), "rep")
    assert "Slack could not be reached to match you" in text_of(reply)
    assert slack_api.calls_to("auth.test") == []  # nothing reached the Web API: it is down


class _World:
    """What `responses` needs of a test world: its loopback Slack."""

    def __init__(self, slack: SlackApiServer) -> None:
        self.slack = slack


@pytest.mark.parametrize("backend", ["sqlite"])
def test_multi_workspace_command_uses_the_stored_installation_while_slack_is_unreachable(
    db_url: str, slack_api: SlackApiServer
) -> None:
    from slack_sdk.oauth.installation_store import Installation

    from bot.tokens import installation_store

    dead_api = f"http://127.0.0.1:{_closed_port()}/api/"
    settings = make_settings(
        db_url, slack_api, slack_api_url=dead_api, slack_bot_token=None, slack_client_id="1.2", slack_client_secret="s"
    )
    services = Services.from_settings(settings)
    seed(services)
    installation_store(services, settings).save(
        Installation(
            app_id="A1", team_id="TPOOR", user_id="UPOOR", bot_token="xoxb-poor", bot_id="BPOOR", bot_user_id="UB"
        )
    )
    try:
        for url in serve(services):
            sender = SlackSender(f"{url}/slack/events", SECRET)
            response = sender.command("credits", user="UPOOR", team="TPOOR", response_url=slack_api.response_url("m"))
            assert response.status_code == 200, response.text
            [reply] = responses(_World(slack_api), "m")
            assert "0 credits available" in text_of(reply)
            # A workspace with no installation is still refused as before, not let in by the fallback.
            other = sender.command("credits", user="UX", team="TNEW", response_url=slack_api.response_url("n"))
            assert other.status_code == 200
            [refusal] = responses(_World(slack_api), "n")
            assert "not installed in this workspace" in text_of(refusal)
    finally:
        services.engine.dispose()
