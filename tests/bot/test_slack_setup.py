"""The app's shape: manifest, Block Kit limits, slack_sdk's tables, OAuth install, Socket Mode."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from slack_sdk.models.blocks import ButtonElement
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, inspect, select
from sqlmodel import SQLModel

import bot
from bot import commands, home, messages
from bot.app import BOT_SCOPES
from core.accounts import CycleInfo
from core.data_requests import PersonPreview
from core.people.types import PersonInfo
from core.services import Services
from core.usage.spend import CategorySpend, MemberSpend
from storage.models import slack_bots, slack_installations, slack_oauth_states
from storage.models.enums import Category, EmailStatus
from storage.models.slack import TOKEN_COLUMN_LENGTH, TOKEN_COLUMNS
from tests.bot.conftest import SECRET, make_settings, serve
from tests.slackapi.signing import SlackSender

MANIFEST = Path(bot.__file__).parent / "manifest.yml"


# ---- manifest ----------------------------------------------------------------------------


def test_manifest_lists_what_the_code_handles() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == commands.COMMAND and command["should_escape"] is True
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [home.HOME_EVENT]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


# ---- Block Kit limits --------------------------------------------------------------------


def _preview(i: int) -> PersonPreview:
    person = PersonInfo(i, f"Person {i}", None, None, "CTO", "Initech", None, "Lisbon", None)
    return PersonPreview(person, EmailStatus.VERIFIED, True, None, None, (), False, False)


def test_messages_never_exceed_50_blocks_and_say_what_was_cut() -> None:
    blocks = messages.candidate_list([_preview(i) for i in range(80)], "Person")
    assert len(blocks) == messages.MAX_MESSAGE_BLOCKS
    assert "more entries not shown" in blocks[-1].to_dict()["elements"][0]["text"]
    assert "32 more" in blocks[-1].to_dict()["elements"][0]["text"]  # 1 + 80 blocks: 49 kept, 32 cut
    short = messages.candidate_list([_preview(i) for i in range(3)], "Person")
    assert len(short) == 4


def test_app_home_never_exceeds_100_blocks() -> None:
    from core.accounts import PlanInfo, TeamInfo
    from core.ledger import Balance
    from core.usage.overview import CreditOverview

    now = datetime.now(UTC)
    team = TeamInfo(1, "acme", PlanInfo(1, "free", 100, False, 1, 8, 0, True), 1, True)
    overview = CreditOverview(team, Balance(1, 50, 0, now), CycleInfo(1, 1, now, now, None), 0, (), 1, 0, ())
    members = [MemberSpend(i, f"m{i}@acme.test", 1, (CategorySpend(Category.EMAIL, 1),)) for i in range(300)]
    view = messages.home_view(overview, [], [], members)
    assert len(view.blocks) == messages.MAX_HOME_BLOCKS
    view.to_dict()  # slack_sdk's own validation accepts it


def test_an_actions_block_refuses_more_than_25_elements() -> None:
    buttons = [ButtonElement(text=str(i), action_id=f"b{i}") for i in range(26)]
    with pytest.raises(messages.BlockLimitExceeded, match="26 elements, Slack allows 25"):
        messages.actions(buttons)
    assert len(messages.actions(buttons[:25]).elements) == 25


# ---- slack_sdk's tables ------------------------------------------------------------------


def _shape(table) -> list[tuple]:
    """Column shapes; token columns are wider on our side (they hold encrypted tokens)."""
    return [
        (
            c.name,
            type(c.type).__name__,
            TOKEN_COLUMN_LENGTH if c.name in TOKEN_COLUMNS else getattr(c.type, "length", None),
            c.nullable,
            c.primary_key,
        )
        for c in table.c
    ]


def test_our_slack_tables_are_column_for_column_slack_sdk_s() -> None:
    theirs = MetaData()
    assert _shape(slack_installations) == _shape(
        SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations")
    )
    assert _shape(slack_bots) == _shape(SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots"))
    assert _shape(slack_oauth_states) == _shape(
        SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")
    )
    for ours, name in ((slack_installations, "slack_installations"), (slack_bots, "slack_bots")):
        [index] = ours.indexes
        [their_index] = theirs.tables[name].indexes
        assert index.name == their_index.name
        assert [c.name for c in index.columns] == [c.name for c in their_index.columns]
    assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= set(SQLModel.metadata.tables)


def test_slack_sdk_stores_work_on_our_migrated_database(engine) -> None:
    assert {"slack_installations", "slack_bots", "slack_oauth_states"} <= set(inspect(engine).get_table_names())
    states = SQLAlchemyOAuthStateStore(expiration_seconds=60, engine=engine)
    state = states.issue()
    assert states.consume(state) is True and states.consume(state) is False


# ---- OAuth install (multi-workspace) -----------------------------------------------------


def test_oauth_install_stores_the_installation_and_then_serves_that_workspace(db_url: str, slack_api) -> None:
    settings = make_settings(
        db_url, slack_api, slack_bot_token=None, slack_client_id="111.222", slack_client_secret="shh"
    )
    services = Services.from_settings(settings)
    try:
        services.accounts.create_team("acme", plan="free")
        services.accounts.add_member("acme", "admin@acme.test", role="admin")
        slack_api.emails["UADMIN"] = "admin@acme.test"
        served = serve(services)
        base = next(served)
        try:
            http = requests.Session()
            page = http.get(f"{base}/slack/install", timeout=10)
            assert page.status_code == 200
            state = re.search(r"state=([\w-]+)", page.text).group(1)
            assert "slack.com/oauth/v2/authorize" in page.text and "client_id=111.222" in page.text
            # bolt's state cookie is Secure (https only): send it back by hand over loopback http.
            cookie = page.headers["Set-Cookie"].split(";")[0]
            assert cookie == f"slack-app-oauth-state={state}"
            redirect = f"{base}/slack/oauth_redirect"
            done = http.get(redirect, params={"code": "abc", "state": state}, headers={"Cookie": cookie}, timeout=10)
            assert done.status_code == 200, done.text
            [exchange] = slack_api.calls_to("oauth.v2.access")
            assert exchange.params["code"] == "abc"
            with services.engine.connect() as conn:
                bots = conn.execute(select(slack_bots.c.team_id, slack_bots.c.bot_token)).all()
                stored = conn.execute(select(slack_installations.c.bot_token)).scalars().all()
                # Encrypted at rest, in both of slack_sdk's tables; our key opens them.
                assert [b.team_id for b in bots] == ["T1"] and "xoxb" not in bots[0].bot_token
                assert all("xoxb" not in token for token in stored)
                assert services.secret_box.decrypt(bots[0].bot_token) == "xoxb-installed-abc"
                assert conn.execute(select(slack_oauth_states)).all() == []  # the state was consumed
            # A replayed redirect with the used state is refused.
            replay = http.get(redirect, params={"code": "abc", "state": state}, headers={"Cookie": cookie}, timeout=10)
            assert replay.status_code != 200
            # The installed workspace now works, with the installed token.
            sender = SlackSender(f"{base}/slack/events", SECRET)
            code = services.identities.create_connect_code("acme").code
            sender.command(f"connect {code}", user="UADMIN", response_url=slack_api.response_url("c"))
            slack_api.wait_for(lambda calls: any(c.method == "response_url" for c in calls))
            [reply] = [c.params for c in slack_api.calls_to("response_url")]
            assert "connected to team *acme*" in reply["text"]
            assert {c.token for c in slack_api.calls_to("users.info")} == {"xoxb-installed-abc"}
            # Authorization reads the installation per request but asks Slack's auth.test once per token:
            # a round trip to Slack before every ack would eat into the 3 s.
            auth_tests = len(slack_api.calls_to("auth.test"))
            for key in ("a1", "a2"):
                answer = sender.command("help", user="UADMIN", response_url=slack_api.response_url(key))
                assert answer.status_code == 200 and "help" in answer.text.lower()
            assert auth_tests >= 1 and len(slack_api.calls_to("auth.test")) == auth_tests
            # A workspace that never installed the app gets nothing done.
            other = sender.command("credits", user="UX", team="TNEW", response_url=slack_api.response_url("n"))
            assert other.status_code == 200
            slack_api.wait_for(lambda calls: any(c.params.get("_key") == "n" for c in calls))
            [refusal] = [c.params for c in slack_api.calls_to("response_url") if c.params["_key"] == "n"]
            assert "not installed in this workspace" in refusal["text"]
        finally:
            next(served, None)
    finally:
        services.engine.dispose()


# ---- Socket Mode ---------------------------------------------------------------------------


def test_socket_mode_handler_is_built_from_settings_without_connecting(db_url: str, slack_api) -> None:
    from bot.socket_mode import socket_mode_handler

    settings = make_settings(db_url, slack_api, slack_app_token="xapp-1-test", slack_signing_secret=None)
    services = Services.from_settings(settings)
    try:
        handler = socket_mode_handler(services)
        assert handler.app_token == "xapp-1-test" and handler.client.app_token == "xapp-1-test"
        assert handler.app.client.base_url == slack_api.api_url
        assert slack_api.calls == []  # nothing was contacted
        missing = Services.from_settings(make_settings(db_url, slack_api))
        with pytest.raises(Exception, match="TRIBUTARY_SLACK_APP_TOKEN"):
            socket_mode_handler(missing)
        missing.engine.dispose()
    finally:
        services.engine.dispose()


def test_without_slack_settings_the_endpoints_say_what_is_missing(db_url: str, slack_api) -> None:
    services = Services.from_settings(make_settings(db_url, slack_api, slack_bot_token=None, slack_signing_secret=None))
    try:
        from web.app import create_app

        response = create_app(services).test_client().post("/slack/events", data="x")
        assert response.status_code == 503 and "TRIBUTARY_SLACK_SIGNING_SECRET" in response.get_json()["detail"]
    finally:
        services.engine.dispose()


_ = threading  # the served app runs in a thread (tests.bot.conftest.serve)
