"""Nobody gets in where they don't belong (issue 11, Slack side), over signed HTTP on loopback.

Outsiders see nothing of a team; a lookup by email is no free verification oracle and is rate-limited;
a workspace is connected only with a one-time code and moved only by an admin of its team; Slack
emails count only when Slack confirmed them; malformed timestamps and ids get clear answers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select, update

from bot import messages
from core.services import Services
from storage.models import SlackConnectCode
from storage.timeutil import utcnow
from tests.bot.conftest import SECRET, World, serve
from tests.bot.test_slack_requests import charges, responses, text_of
from tests.rate_clock import pin_rate_window
from tests.slackapi.signing import SlackSender

LINK_HINT = "ask an admin to link you"
TEAM_DATA = ("99 credits", "100 credits", "VP Sales", "Acme Corp", "jane.doe@acmecorp.test", "verified", "rep@acme")


def assert_only_the_link_hint(payload: dict | str) -> None:
    text = payload if isinstance(payload, str) else text_of(payload)
    assert LINK_HINT in text, text
    leaked = [d for d in TEAM_DATA if d in text]
    assert leaked == [], f"an outsider saw {leaked}: {text}"


# ---- outsiders ---------------------------------------------------------------------------


def test_an_unlinked_user_sees_only_ask_an_admin_in_commands_buttons_and_home(
    world: World, sender: SlackSender
) -> None:
    world.services.data_requests.access_email(world.team_id, "rep@acme.test", world.jane)  # the team bought Jane
    for key, command in (
        ("o-lookup", "lookup jane.doe@acmecorp.test"),
        ("o-credits", "credits"),
        ("o-usage", "usage"),
    ):
        sender.command(command, user="UOUT", response_url=world.slack.response_url(key))
        [reply] = responses(world, key)
        assert_only_the_link_hint(reply)
    for key, action in (("o-email", "access_email"), ("o-mobile", "access_mobile"), ("o-pick", None)):
        action_id = action or f"{messages.PICK_PERSON}:{world.jane}"
        sender.press(action_id, str(world.jane), user="UOUT", response_url=world.slack.response_url(key))
        [reply] = responses(world, key)
        assert_only_the_link_hint(reply)
        assert reply["replace_original"] is False
    assert sender.home_opened(user="UOUT").status_code == 200
    [publish] = world.slack.wait_calls("views.publish")
    assert_only_the_link_hint(json.dumps(publish.params["view"]))
    assert len(charges(world)) == 1  # only the team's own purchase


def test_a_slack_email_counts_only_when_slack_confirmed_it(world: World, sender: SlackSender) -> None:
    world.slack.unconfirmed.add("UREP")  # anyone can type rep@acme.test into an unconfirmed profile
    sender.command("credits", user="UREP", response_url=world.slack.response_url("unconfirmed"))
    [reply] = responses(world, "unconfirmed")
    assert_only_the_link_hint(reply)
    rep = world.services.accounts.member("rep@acme.test")
    assert world.services.identities.slack_user_of(rep.id) is None
    world.slack.unconfirmed.discard("UREP")
    sender.command("credits", user="UREP", response_url=world.slack.response_url("confirmed"))
    [reply] = responses(world, "confirmed")
    assert "100 credits available" in text_of(reply)
    assert world.services.identities.slack_user_of(rep.id) == "UREP"


# ---- lookups -----------------------------------------------------------------------------


def test_a_lookup_by_email_shows_the_status_only_once_the_team_paid_for_it(world: World, sender: SlackSender) -> None:
    sender.command("lookup ravi@globex.test", user="UREP", response_url=world.slack.response_url("before"))
    [card] = responses(world, "before")
    assert "not yet accessed" in text_of(card) and "accept-all" not in text_of(card)
    world.services.data_requests.access_email(world.team_id, "rep@acme.test", world.jane)
    sender.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=world.slack.response_url("after"))
    [card] = responses(world, "after")
    assert "jane.doe@acmecorp.test" in text_of(card) and "verified" in text_of(card)
    # Another team that has not paid learns nothing about the address.
    sender.command(
        "lookup jane.doe@acmecorp.test", user="UPOOR", team="TPOOR", response_url=world.slack.response_url("poor")
    )
    [card] = responses(world, "poor")
    assert "verified" not in text_of(card) and "jane.doe@acmecorp.test" not in text_of(card)


def test_lookups_are_limited_per_member_and_the_count_is_shared_by_processes(
    world: World, sender: SlackSender
) -> None:
    world.services.settings = world.services.settings.model_copy(update={"slack_lookups_per_minute": 2})
    other_process = Services.from_settings(world.services.settings)  # its own engine, the same database
    pin_rate_window(world.services, other_process)
    served = serve(other_process)
    other = SlackSender(f"{next(served)}/slack/events", SECRET)
    try:
        sender.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=world.slack.response_url("r1"))
        other.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=world.slack.response_url("r2"))
        for key in ("r1", "r2"):
            [card] = responses(world, key)
            assert "Jane Doe" in text_of(card)
        other.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=world.slack.response_url("r3"))
        [refused] = responses(world, "r3")
        assert "lookups: at most 2 every 60 s; try again in" in refused["text"] and "Jane" not in text_of(refused)
        sender.command("lookup jane.doe@acmecorp.test", user="UREP2", response_url=world.slack.response_url("r4"))
        [card] = responses(world, "r4")  # per member: a colleague is not held back
        assert "Jane Doe" in text_of(card)
    finally:
        next(served, None)
        other_process.engine.dispose()


# ---- connecting a workspace --------------------------------------------------------------


def _beta(world: World) -> None:
    accounts = world.services.accounts
    accounts.create_team("beta", plan="free")
    accounts.add_member("beta", "boss@beta.test", role="admin")
    world.slack.emails["UBOSS"] = "boss@beta.test"  # a user of acme's workspace who is beta's admin


def test_an_admin_of_another_team_cannot_take_over_a_connected_workspace(world: World, sender: SlackSender) -> None:
    _beta(world)
    sender.command("connect beta", user="UBOSS", response_url=world.slack.response_url("h1"))
    responses(world, "h1")
    code = world.services.identities.create_connect_code("beta").code
    sender.command(f"connect {code}", user="UBOSS", response_url=world.slack.response_url("h2"))
    [reply] = responses(world, "h2")
    assert "already connected; only an admin of its team can move it" in reply["text"]
    sender.command(f"connect {code}", user="UREP", response_url=world.slack.response_url("h3"))
    [reply] = responses(world, "h3")  # a member of acme who is no admin: refused as well
    assert "only an admin of its team can move it" in reply["text"]
    assert world.services.identities.workspace("T1").team.name == "acme"
    # acme's admin may move it; the refusals above did not use the code up.
    sender.command(f"connect {code}", user="UADMIN", response_url=world.slack.response_url("h4"))
    [reply] = responses(world, "h4")
    assert "connected to team *beta*" in reply["text"]
    assert world.services.identities.workspace("T1").team.name == "beta"


def test_connect_codes_are_stored_hashed_and_expire(world: World, sender: SlackSender) -> None:
    _beta(world)
    code = world.services.identities.create_connect_code("beta")
    assert code.expires_at - utcnow() <= timedelta(minutes=15)
    table = SlackConnectCode.__table__
    with world.services.engine.connect() as conn:
        [row] = conn.execute(select(table)).all()
        assert code.code not in json.dumps([str(v) for v in row])
        assert row.code_hash == hashlib.sha256(code.code.replace("-", "").encode()).hexdigest()
        conn.execute(update(table).values(expires_at=utcnow() - timedelta(seconds=1)))
        conn.commit()
    sender.command(f"connect {code.code}", user="UBOSS", team="TBETA", response_url=world.slack.response_url("x"))
    [reply] = responses(world, "x")
    assert "code is unknown, used or expired" in reply["text"]
    assert world.services.identities.workspace("TBETA") is None


def test_the_cli_prints_a_code_that_connects_a_fresh_workspace(world: World, sender: SlackSender, db_url: str) -> None:
    _beta(world)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "slack", "connect-code", "beta"],
        env={**os.environ, "TRIBUTARY_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    code = proc.stdout.split("/tributary connect ", 1)[1].split()[0]
    sender.command(f"connect {code.lower()}", user="UBOSS", team="TBETA", response_url=world.slack.response_url("c"))
    [reply] = responses(world, "c")
    assert "connected to team *beta*" in reply["text"] and "You are boss@beta.test" in reply["text"]
    unknown = subprocess.run(
        [sys.executable, "-m", "cli.main", "slack", "connect-code", "nosuchteam"],
        env={**os.environ, "TRIBUTARY_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


# ---- malformed requests ------------------------------------------------------------------


def test_a_non_numeric_timestamp_is_401_not_500(world: World, sender: SlackSender) -> None:
    for timestamp in ("soon", "1e9", "-1700000000", "17000000000000000000000000"):
        response = sender.command("help", user="UREP", response_url=world.slack.response_url("t"), timestamp=timestamp)
        assert response.status_code == 401


def test_a_20_digit_person_id_is_not_found_not_a_database_error(world: World, sender: SlackSender) -> None:
    huge = "9" * 20
    sender.press("access_email", huge, user="UREP", response_url=world.slack.response_url("b1"))
    sender.press(f"{messages.PICK_PERSON}:{huge}", huge, user="UREP", response_url=world.slack.response_url("b2"))
    sender.command(f"lookup {huge}", user="UREP", response_url=world.slack.response_url("b3"))
    sender.command("lookup 2147483648", user="UREP", response_url=world.slack.response_url("b4"))
    for key in ("b1", "b2", "b3", "b4"):
        [reply] = responses(world, key)
        assert "no person" in reply["text"] and "went wrong" not in reply["text"], reply["text"]
    assert charges(world) == []
