"""`/tributary accounts …` over signed HTTP into the real app: a page of the team's accounts with
owners, filtered by owner, and "Next page" walking every account once. Both databases."""

from __future__ import annotations

from core.people.contacts import NewPerson, add_person
from storage.models.enums import ContactSource
from tests.bot.conftest import World
from tests.bot.test_slack_contacts import _values
from tests.bot.test_slack_requests import buttons, responses, text_of
from tests.slackapi.signing import SlackSender


def test_a_page_of_accounts_then_the_next(world: World, sender: SlackSender) -> None:
    svc = world.services
    rep = svc.accounts.member("rep@acme.test", "acme")
    rep2 = svc.accounts.member("rep2@acme.test", "acme")
    people = [add_person(svc.engine, NewPerson(full_name=f"P {i:02d}", company=f"Firm {i:02d}")) for i in range(12)]
    svc.team_contacts.save(rep, people, ContactSource.API)
    svc.team_contacts.save(rep2, [add_person(svc.engine, NewPerson(full_name="Q", company="Rep2 Firm"))], "csv")

    sender.command("accounts owner:@me", user="UREP", response_url=world.slack.response_url("a1"))
    [page] = responses(world, "a1")
    assert "12 accounts" in text_of(page) and "Rep2 Firm" not in text_of(page)
    assert buttons(page) == {"accounts_next": "Next page"}
    first = [b["text"]["text"] for b in page["blocks"][1:] if b["type"] == "section"]
    assert all("owner rep@acme.test" in line for line in first)
    sender.press(
        "accounts_next", _values(page)["accounts_next"], user="UREP", response_url=world.slack.response_url("a2")
    )
    [second] = responses(world, "a2")
    rest = [b["text"]["text"] for b in second["blocks"][1:] if b["type"] == "section"]
    assert second.get("replace_original") is True and "accounts_next" not in buttons(second)
    names = sorted(line.split("*")[1] for line in first + rest)
    assert names == [f"Firm {i:02d}" for i in range(12)]
