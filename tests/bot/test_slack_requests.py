"""Signed HTTP requests into the app on loopback; the app's Web API calls go to a loopback Slack.

Every command, button and event the bot handles, and the ways Slack requests go wrong."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot import messages
from storage.models.enums import TransferKind
from tests.bot.conftest import SECRET, World
from tests.slackapi.signing import SlackSender


def charges(world: World, team_id: int | None = None) -> list:
    transfers = world.services.ledger.transfers(team_id or world.team_id)
    return [t for t in transfers if t.kind in (TransferKind.POST, TransferKind.SPEND)]


def responses(world: World, key: str, n: int = 1) -> list[dict]:
    world.slack.wait_for(
        lambda calls: sum(c.method == "response_url" and c.params["_key"] == key for c in calls) >= n,
        what=f"{n} response(s) to {key}",
    )
    return [c.params for c in world.slack.calls_to("response_url") if c.params["_key"] == key]


def text_of(payload: dict) -> str:
    """Everything a user would read in a message: its text and all text inside its blocks."""
    return json.dumps(payload, ensure_ascii=False)


def buttons(payload: dict) -> dict[str, str]:
    found = {}
    for block in payload.get("blocks") or []:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found[element["action_id"]] = element["text"]["text"]
        if block.get("accessory", {}).get("type") == "button":
            found[block["accessory"]["action_id"]] = block["accessory"]["text"]["text"]
    return found


# ---- request verification ----------------------------------------------------------------


def test_bad_signature_is_refused_with_401(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("badsig")
    response = sender.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=url, secret="not-the-secret")
    assert response.status_code == 401
    press = sender.press("access_email", str(world.jane), user="UREP", response_url=url, secret="wrong")
    assert press.status_code == 401
    assert charges(world) == [] and world.slack.calls_to("response_url") == []


def test_timestamp_older_than_five_minutes_is_refused_with_401(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("old")
    stale = int(time.time()) - 6 * 60
    response = sender.command("lookup jane.doe@acmecorp.test", user="UREP", response_url=url, timestamp=stale)
    assert response.status_code == 401
    fresh = sender.command("help", user="UREP", response_url=url)
    assert fresh.status_code == 200  # the same request, correctly timed, is accepted


# ---- commands ----------------------------------------------------------------------------


def test_help_is_answered_in_the_ack_itself(world: World, sender: SlackSender) -> None:
    response = sender.command("help", user="UOUT", response_url=world.slack.response_url("help"))
    assert response.status_code == 200
    body = response.json()
    assert "/tributary lookup" in text_of(body) and body["blocks"][0]["type"] == "section"
    unknown = sender.command("frobnicate", user="UREP", response_url=world.slack.response_url("help2"))
    assert unknown.status_code == 200 and "unknown command 'frobnicate'" in text_of(unknown.json())


def test_lookup_by_email_shows_a_card_with_priced_buttons_and_no_address(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("lookup-email")
    ack = sender.command("lookup <mailto:jane.doe@acmecorp.test|jane.doe@acmecorp.test>", user="UREP", response_url=url)
    assert ack.status_code == 200 and ack.text == ""  # acknowledged empty; the card comes via response_url
    [card] = responses(world, "lookup-email")
    text = text_of(card)
    assert "Jane Doe" in text and "VP Sales" in text and "Acme Corp" in text and "Austin, TX, US" in text
    assert "not yet accessed" in text and "available" in text
    assert "verified" not in text  # by email, the status is the team's only once it has paid for it
    assert "jane.doe@acmecorp.test" not in text and "+15125550199" not in text  # not accessed yet
    assert buttons(card) == {"access_email": "Access email (1 credit)", "access_mobile": "Access mobile (8 credits)"}
    assert charges(world) == []  # looking up is free


def test_lookup_by_linkedin_url_finds_the_same_person(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("lookup-li")
    sender.command("lookup <https://linkedin.com/in/JaneDoe/>", user="UREP", response_url=url)
    [card] = responses(world, "lookup-li")
    assert "Jane Doe" in text_of(card) and "access_email" in buttons(card)


def test_lookup_of_an_unknown_person_or_bad_reference_says_so(world: World, sender: SlackSender) -> None:
    sender.command("lookup ghost@nowhere.test", user="UREP", response_url=world.slack.response_url("ghost"))
    [reply] = responses(world, "ghost")
    assert "no person matches 'ghost@nowhere.test'" in reply["text"]
    sender.command("lookup https://linkedin.com/company/acme", user="UREP", response_url=world.slack.response_url("co"))
    [reply] = responses(world, "co")
    assert "not a LinkedIn profile URL" in reply["text"]


def test_lookup_by_name_and_company_lists_candidates(world: World, sender: SlackSender) -> None:
    pytest.importorskip("core.people.matching", reason="name lookup needs matching")
    sender.command("lookup Jane Doe at Acme", user="UREP", response_url=world.slack.response_url("name"))
    [reply] = responses(world, "name")
    assert "Jane Doe" in text_of(reply)


def test_picking_a_candidate_shows_the_card_in_place(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("pick")
    sender.press(f"{messages.PICK_PERSON}:{world.ravi}", str(world.ravi), user="UREP", response_url=url)
    [card] = responses(world, "pick")
    assert card["replace_original"] is True and "Ravi Patel" in text_of(card)
    assert buttons(card) == {"access_email": "Access email (1 credit)"}  # no mobile on file: no mobile button


def test_unknown_workspace_is_told_to_connect(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("unknown-ws")
    sender.command("lookup jane.doe@acmecorp.test", user="UREP", team="T9", response_url=url)
    [reply] = responses(world, "unknown-ws")
    assert "not connected to a Tributary team" in reply["text"] and "/tributary connect" in reply["text"]
    sender.press("access_email", str(world.jane), user="UREP", team="T9", response_url=url)
    responses(world, "unknown-ws", 2)
    assert charges(world) == []


def test_credits_shows_balance_cycle_and_spend(world: World, sender: SlackSender) -> None:
    world.services.data_requests.access_email(world.team_id, "rep@acme.test", world.jane)
    sender.command("credits", user="UREP", response_url=world.slack.response_url("credits"))
    [reply] = responses(world, "credits")
    text = text_of(reply)
    assert "99 credits available" in text and "email 1" in text
    cycle = world.services.accounts.current_cycle(world.team_id)
    assert cycle.ends_at.strftime("%Y-%m-%d") in text
    assert "*You spent:* 1 credit" in text  # rep was matched by profile email (users.info) and linked
    assert world.services.identities.slack_user_of(world.services.accounts.member("rep@acme.test").id) == "UREP"
    sender.command("credits", user="UOUT", response_url=world.slack.response_url("credits-out"))
    [reply] = responses(world, "credits-out")
    assert "not linked to a member" in text_of(reply)


def test_usage_is_for_admins_and_can_name_a_user(world: World, sender: SlackSender) -> None:
    data = world.services.data_requests
    data.access_email(world.team_id, "rep@acme.test", world.jane)
    data.access_mobile(world.team_id, "rep2@acme.test", world.jane)
    sender.command("usage", user="UREP", response_url=world.slack.response_url("u-rep"))
    [reply] = responses(world, "u-rep")
    assert "only admins" in reply["text"]
    sender.command("usage", user="UADMIN", response_url=world.slack.response_url("u-all"))
    [reply] = responses(world, "u-all")
    text = text_of(reply)
    assert "rep2@acme.test*: 8 credits" in text and "rep@acme.test*: 1 credit" in text
    world.services.identities.link(world.team_id, "rep2@acme.test", "UREP2")
    sender.command("usage <@UREP2|rep2>", user="UADMIN", response_url=world.slack.response_url("u-one"))
    [reply] = responses(world, "u-one")
    text = text_of(reply)
    assert "rep2@acme.test*: 8 credits — mobile 8" in text and "rep@acme.test*" not in text


def test_connect_needs_a_one_time_code_from_the_server(world: World, sender: SlackSender) -> None:
    accounts = world.services.accounts
    accounts.create_team("beta", plan="free")
    accounts.add_member("beta", "boss@beta.test", role="admin")
    world.slack.emails.update({"UBOSS": "boss@beta.test"})
    sender.command("connect beta", user="UBOSS", team="TBETA", response_url=world.slack.response_url("c1"))
    [reply] = responses(world, "c1")  # a team's name is no proof: anyone can type it
    assert "code is unknown, used or expired" in reply["text"] and "tributary slack connect-code" in reply["text"]
    assert world.services.identities.workspace("TBETA") is None
    code = world.services.identities.create_connect_code("beta").code
    sender.command(f"connect {code}", user="UBOSS", team="TBETA", response_url=world.slack.response_url("c2"))
    [reply] = responses(world, "c2")
    assert "connected to team *beta*" in reply["text"]
    assert world.services.identities.workspace("TBETA").team.name == "beta"
    sender.command(f"connect {code}", user="UBOSS", team="TGAMMA", response_url=world.slack.response_url("c3"))
    [reply] = responses(world, "c3")  # single use
    assert "code is unknown, used or expired" in reply["text"]
    assert world.services.identities.workspace("TGAMMA") is None


def test_link_by_an_admin_lets_a_slack_user_spend(world: World, sender: SlackSender) -> None:
    # UOUT's Slack email is not a member's: only an admin can vouch for them.
    sender.command("link rep2@acme.test", user="UOUT", response_url=world.slack.response_url("l1"))
    [reply] = responses(world, "l1")
    assert "ask an admin" in reply["text"]
    sender.command("link <@UOUT|out> rep2@acme.test", user="UREP", response_url=world.slack.response_url("l2"))
    [reply] = responses(world, "l2")
    assert "only admins" in reply["text"]
    sender.command("link <@UOUT|out> rep2@acme.test", user="UADMIN", response_url=world.slack.response_url("l3"))
    [reply] = responses(world, "l3")
    assert "<@UOUT> is now rep2@acme.test" in reply["text"]
    sender.press("access_email", str(world.jane), user="UOUT", response_url=world.slack.response_url("l4"))
    [card] = responses(world, "l4")
    assert "jane.doe@acmecorp.test" in text_of(card) and len(charges(world)) == 1


# ---- buttons -----------------------------------------------------------------------------


def test_access_email_updates_the_card_in_place_and_charges_once(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("access")
    response = sender.press("access_email", str(world.jane), user="UREP", response_url=url)
    assert response.status_code == 200
    [card] = responses(world, "access")
    text = text_of(card)
    assert card["replace_original"] is True
    assert "jane.doe@acmecorp.test" in text and "verified" in text and "+15125550147" in text  # office phone, free
    assert "Email accessed for 1 credit" in text
    assert buttons(card) == {"access_mobile": "Access mobile (8 credits)"}
    # Pressed again (a stale copy of the card), and Slack retrying the same delivery: never charged again.
    sender.press("access_email", str(world.jane), user="UREP", response_url=url)
    sender.press("access_email", str(world.jane), user="UREP", response_url=url, retry_num=1)
    later = responses(world, "access", 3)
    assert all("already has this email: no credits charged" in text_of(r) for r in later[1:])
    [charge] = charges(world)
    assert charge.amount_credits == 1 and charge.meta.feature == "slack" and charge.meta.category == "email"
    assert world.services.ledger.balance(world.team_id).available_credits == 99


def test_access_mobile_shows_numbers_with_statuses(world: World, sender: SlackSender) -> None:
    sender.press("access_mobile", str(world.jane), user="UREP", response_url=world.slack.response_url("mob"))
    [card] = responses(world, "mob")
    text = text_of(card)
    assert "`+15125550199` (valid, mobile)" in text and "Mobile accessed for 8 credits" in text
    assert [c.amount_credits for c in charges(world)] == [8]


def test_free_results_say_so_and_cost_nothing(world: World, sender: SlackSender) -> None:
    sender.press("access_email", str(world.ravi), user="UREP", response_url=world.slack.response_url("free"))
    [card] = responses(world, "free")
    assert "ravi@globex.test" in text_of(card) and "free, no credits charged" in text_of(card)
    sender.press("access_email", str(world.nobody), user="UREP", response_url=world.slack.response_url("none"))
    [card] = responses(world, "none")
    assert "No email found: no credits charged" in text_of(card)
    assert charges(world) == []


def test_two_people_pressing_at_once_pay_once(world: World, sender: SlackSender) -> None:
    url = world.slack.response_url("race")
    with ThreadPoolExecutor(max_workers=6) as pool:
        acks = list(
            pool.map(
                lambda i: sender.press(
                    "access_mobile", str(world.jane), user=("UREP", "UREP2", "UADMIN")[i % 3], response_url=url
                ),
                range(6),
            )
        )
    assert [a.status_code for a in acks] == [200] * 6
    replies = responses(world, "race", 6)
    assert all("+15125550199" in text_of(r) for r in replies)
    assert [c.amount_credits for c in charges(world)] == [8]
    assert sum("Mobile accessed for 8 credits" in text_of(r) for r in replies) == 1
    assert world.services.ledger.balance(world.team_id).available_credits == 92


def test_non_member_pressing_access_is_refused_and_not_charged(world: World, sender: SlackSender) -> None:
    sender.press("access_email", str(world.jane), user="UOUT", response_url=world.slack.response_url("nm"))
    [reply] = responses(world, "nm")
    assert reply["replace_original"] is False and "not linked to a member of team *acme*" in reply["text"]
    assert "ask an admin to link you" in reply["text"]
    assert charges(world) == []
    assert world.services.ledger.balance(world.team_id).available_credits == 100


def test_insufficient_credits_is_a_clear_message_with_the_balance(world: World, sender: SlackSender) -> None:
    sender.press(
        "access_email", str(world.jane), user="UPOOR", team="TPOOR", response_url=world.slack.response_url("p")
    )
    [reply] = responses(world, "p")
    text = text_of(reply)
    assert "Not enough credits" in text and "costs 1 credit" in text and "has 0 credits available" in text
    assert reply["replace_original"] is False
    assert charges(world, world.poor_team_id) == []


# ---- App Home ----------------------------------------------------------------------------


def test_app_home_shows_balance_accesses_and_refunds_and_admins_see_team_usage(
    world: World, sender: SlackSender
) -> None:
    services = world.services
    rep = services.accounts.member("rep@acme.test")
    services.data_requests.access_email(world.team_id, rep.id, world.jane)
    services.ledger.schedule_refund(world.team_id, 1, key="refund-1", meta=_refund_meta(rep.id))
    assert sender.home_opened(user="UREP").status_code == 200
    [publish] = world.slack.wait_calls("views.publish")
    view = json.loads(publish.params["view"]) if isinstance(publish.params["view"], str) else publish.params["view"]
    text = json.dumps(view)
    assert publish.params["user_id"] == "UREP" and view["type"] == "home"
    assert "99 credits available" in text and "Jane Doe" in text and "pending: credited when the next cycle" in text
    assert "Team usage" not in text
    sender.home_opened(user="UADMIN")
    publishes = world.slack.wait_calls("views.publish", 2)
    admin_view = publishes[1].params["view"]
    admin_text = admin_view if isinstance(admin_view, str) else json.dumps(admin_view)
    assert "Team usage this cycle (admins)" in admin_text and "rep@acme.test" in admin_text


def _refund_meta(member_id: int):
    from core.ledger import UsageMeta
    from storage.models.enums import Category

    return UsageMeta(category=Category.EMAIL, member_id=member_id, description="jane.doe@acmecorp.test bounced")


def test_every_request_is_acknowledged_before_the_slow_work(world: World, sender: SlackSender) -> None:
    """The ack goes back while the lookup is still blocked: the work runs after the ack, not before."""
    world.slack.script("users.info")  # nothing scripted: just make sure the server is up
    import threading

    gate = threading.Event()
    original = world.services.person_previews.preview

    def slow_preview(*args, **kwargs):
        gate.wait(10)
        return original(*args, **kwargs)

    world.services.person_previews.preview = slow_preview  # the lookup cannot finish until the gate opens
    try:
        response = sender.command(
            "lookup jane.doe@acmecorp.test", user="UREP", response_url=world.slack.response_url("s")
        )
        assert response.status_code == 200 and world.slack.calls_to("response_url") == []
    finally:
        gate.set()
    [card] = responses(world, "s")
    assert "Jane Doe" in text_of(card)


@pytest.mark.parametrize("secret", [SECRET])
def test_events_url_rejects_unsigned_requests(world: World, app_url: str, secret: str) -> None:
    import requests

    response = requests.post(f"{app_url}/slack/events", data=b"command=/tributary&text=help", timeout=5)
    assert response.status_code == 401
