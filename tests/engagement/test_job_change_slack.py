"""A job-change notice reaches the contact's owner as a Slack DM (loopback Web API), once, on both
databases; a refund notice in the same outbox still reads as a refund."""

from __future__ import annotations

import json

from bot.notices import deliver_notices
from core.contributions import ContactRecord
from storage.models.contributor import SourceKind
from tests.bot.conftest import World, slack_api, world  # noqa: F401


def test_the_owner_hears_of_the_move_once(world: World) -> None:  # noqa: F811
    svc = world.services
    rep = svc.accounts.member("rep@acme.test")
    svc.data_requests.access_email(world.team_id, rep.id, world.jane)
    moved = ContactRecord(full_name="Jane Doe", linkedin_url="linkedin.com/in/janedoe", company="Initech <HQ>",
                          domain="initech.test")  # fmt: skip
    for team in ("crm-a", "crm-b"):
        svc.accounts.create_team(team)
        svc.contributions.contribute(svc.accounts.team(team).id, [moved], SourceKind.CSV)
    svc.contributions.contribute(svc.accounts.team("crm-a").id, [moved], SourceKind.CRM)  # seen again

    report = deliver_notices(svc.outbox, svc, svc.settings, limit=10)
    assert (report.delivered, report.failed) == (1, 0)
    [post] = world.slack.calls_to("chat.postMessage", ok_only=True)
    blocks = post.params["blocks"]
    text = blocks if isinstance(blocks, str) else json.dumps(blocks)
    assert post.params["channel"] == "DREP"
    assert "Job change" in text and "Jane Doe" in text and "Acme Corp" in text
    assert "Initech &lt;HQ&gt;" in text and "<HQ>" not in text  # contact data is escaped, never markup
    assert "jane.doe@acmecorp.test" in text and "update required" in text
    assert deliver_notices(svc.outbox, svc, svc.settings, limit=10).delivered == 0
    assert svc.job_changes.detect() == 0
    assert len(world.slack.calls_to("chat.postMessage", ok_only=True)) == 1
