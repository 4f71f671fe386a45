"""`/tributary contacts …` over signed HTTP into the real app, Slack's Web API on loopback: a page,
the next page, and "Export to CSV" delivering the file to a DM (files.getUploadURLExternal, the
upload, files.completeUploadExternal), charged within the price the button showed. Both databases."""

from __future__ import annotations

import csv
import io
import json

from core.people.contacts import NewPerson, add_person
from storage.models.enums import Category, ContactSource
from tests.bot.conftest import World
from tests.bot.test_slack_requests import buttons, responses, text_of
from tests.slackapi.signing import SlackSender


def _values(payload: dict) -> dict[str, str]:
    found = {}
    for block in payload.get("blocks") or []:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found[element["action_id"]] = element["value"]
    return found


def _seed(world: World, extra: int = 0) -> None:
    svc = world.services
    svc.accounts.create_plan("exporting", monthly_credits=100, price_export_credits=3)
    svc.accounts.set_plan("acme", "exporting")
    rep = svc.accounts.member("rep@acme.test", "acme")
    rep2 = svc.accounts.member("rep2@acme.test", "acme")
    svc.team_contacts.save(rep, [world.jane, world.ravi], ContactSource.SLACK)
    svc.team_contacts.save(rep2, [world.nobody], ContactSource.CSV)
    more = [add_person(svc.engine, NewPerson(full_name=f"Extra {i:02d}")) for i in range(extra)]
    if more:
        svc.team_contacts.save(rep, more, ContactSource.API)


def test_a_filtered_page_then_export_to_a_dm(world: World, sender: SlackSender) -> None:
    _seed(world)
    sender.command("contacts status:verified owner:@me", user="UREP", response_url=world.slack.response_url("c1"))
    [page] = responses(world, "c1")
    assert "Jane Doe" in text_of(page) and "Ravi Patel" not in text_of(page) and "No Body" not in text_of(page)
    assert "1 contacts" in text_of(page)
    assert buttons(page) == {"contacts_export": "Export to CSV (3 credits)"}  # one page: no next button

    before = world.services.ledger.balance(world.team_id).available_credits
    value = _values(page)["contacts_export"]
    sender.press("contacts_export", value, user="UREP", response_url=world.slack.response_url("x1"))
    [done] = responses(world, "x1")
    assert "Exported 1 contacts (3 credits)" in done["text"]
    [opened] = world.slack.calls_to("conversations.open")
    [upload] = world.slack.calls_to("upload")
    data = world.slack.uploads[upload.params["file_id"]]
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [(r["full_name"], r["email"], r["email_status"]) for r in rows] == [
        ("Jane Doe", "jane.doe@acmecorp.test", "verified")]  # fmt: skip
    [complete] = world.slack.calls_to("files.completeUploadExternal")
    assert opened.params["users"] == "UREP" and complete.params["channel_id"] == "DREP"  # the presser's DM
    assert world.services.ledger.balance(world.team_id).available_credits == before - 3
    [log] = [r for r in world.services.ledger.usage_log(world.team_id) if r.category == Category.EXPORT.value]
    assert (log.credits, log.user, log.feature) == (3, "rep@acme.test", "slack")
    # Exported again: the contact is not new, nothing more is charged.
    sender.press("contacts_export", value, user="UREP", response_url=world.slack.response_url("x2"))
    assert "(0 credits)" in responses(world, "x2")[0]["text"]
    assert world.services.ledger.balance(world.team_id).available_credits == before - 3


def test_next_page_buttons_walk_every_contact_once(world: World, sender: SlackSender) -> None:
    _seed(world, extra=12)
    sender.command("contacts", user="UREP", response_url=world.slack.response_url("p1"))
    [page] = responses(world, "p1")
    assert "15 contacts" in text_of(page) and set(buttons(page)) == {"contacts_next", "contacts_export"}
    seen = [b["text"]["text"] for b in page["blocks"][1:] if b["type"] == "section"]
    sender.press(
        "contacts_next", _values(page)["contacts_next"], user="UREP", response_url=world.slack.response_url("p2")
    )
    [second] = responses(world, "p2")
    assert second.get("replace_original") is True and "contacts_next" not in buttons(second)
    seen += [b["text"]["text"] for b in second["blocks"][1:] if b["type"] == "section"]
    names = [s.split("*")[1] for s in seen]
    assert len(names) == 15 == len(set(names))


def test_the_export_button_never_costs_more_than_it_said(world: World, sender: SlackSender) -> None:
    _seed(world)
    sender.command("contacts", user="UREP", response_url=world.slack.response_url("c"))
    [page] = responses(world, "c")
    assert buttons(page)["contacts_export"] == "Export to CSV (9 credits)"
    value = json.loads(_values(page)["contacts_export"])
    # A new contact arrives before the button is pressed: the export would cost 12 > 9, so it is refused.
    svc = world.services
    svc.team_contacts.save(
        svc.accounts.member("rep@acme.test", "acme"),
        [add_person(svc.engine, NewPerson(full_name="Late"))],
        ContactSource.API,
    )
    before = svc.ledger.balance(world.team_id).available_credits
    sender.press("contacts_export", json.dumps(value), user="UREP", response_url=world.slack.response_url("x"))
    [refused] = responses(world, "x")
    assert "over the cap of 9" in refused["text"] and world.slack.calls_to("upload") == []
    assert svc.ledger.balance(world.team_id).available_credits == before


def test_bad_words_outsiders_and_forged_buttons_get_a_clear_answer(world: World, sender: SlackSender) -> None:
    _seed(world)
    sender.command("contacts status:great", user="UREP", response_url=world.slack.response_url("b1"))
    assert "status: 'great' is not one of" in responses(world, "b1")[0]["text"]
    sender.command("contacts", user="UOUT", response_url=world.slack.response_url("b2"))
    assert "ask an admin to link you" in responses(world, "b2")[0]["text"]
    sender.command("contacts", user="UPOOR", team="TPOOR", response_url=world.slack.response_url("b3"))
    assert "0 contacts" in text_of(responses(world, "b3")[0])  # another team sees none of acme's
    sender.press("contacts_export", "not json", user="UREP", response_url=world.slack.response_url("b4"))
    assert "not one we made" in responses(world, "b4")[0]["text"]
    sender.press(
        "contacts_next", json.dumps({"a": "", "c": "junk"}), user="UREP", response_url=world.slack.response_url("b5")
    )
    assert "cursor: not a cursor" in responses(world, "b5")[0]["text"]
