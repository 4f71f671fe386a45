"""Accessing saves the contact with its owner (the member who accessed) and source (the front end);
a refund notice goes to the contact's owner. Both databases, over the loopback SMTP relay."""

from __future__ import annotations

from datetime import timedelta

from core.team_contacts.models import ContactFilter, Selection
from storage.models.enums import ContactSource, Feature
from tests.mailpeers.fixtures import make_world, recipients_net, relay, relay_password  # noqa: F401


def test_access_saves_owner_and_source_and_refund_notices_reach_the_owner(  # noqa: F811
    engine, db_url, tmp_path, relay, relay_password, recipients_net  # noqa: F811
) -> None:
    world = make_world(engine, db_url, tmp_path, relay, None, recipients_net)
    svc, now = world.services, world.now
    vera = world.person("Vera Fied", "vera@initech.test")
    mo = world.person("Mo Bile", None, mobile="+447700900123")
    rep = world.team("acme", created=now - timedelta(days=3))
    team = svc.accounts.team("acme")
    admin = svc.accounts.add_member("acme", "boss@acme.test", role="admin")
    owner = svc.accounts.add_member("acme", "owner@acme.test")
    rep_info = svc.accounts.member(rep, "acme")

    svc.data_requests.access_email("acme", rep, vera, feature=Feature.SLACK, now=now - timedelta(days=2))
    svc.data_requests.access_mobile("acme", rep, mo, feature=Feature.CSV, now=now - timedelta(days=2))
    # Accessed again by someone else through another front end: the contact keeps its first owner.
    svc.data_requests.access_email("acme", "boss@acme.test", vera, feature=Feature.API)
    contacts = {c.full_name: c for c in svc.team_contacts.find(admin).contacts}
    assert (contacts["Vera Fied"].owner_member_id, contacts["Vera Fied"].source) == (rep_info.id, ContactSource.SLACK)
    assert (contacts["Mo Bile"].owner_member_id, contacts["Mo Bile"].source) == (rep_info.id, ContactSource.CSV)

    svc.team_contacts.assign(admin, "owner@acme.test", Selection(filter=ContactFilter(text="vera")))
    sent = svc.sending.send("acme", rep, "vera@initech.test", subject="Hi", body="Hi", now=now - timedelta(days=1))
    # A genuine bounce: the DSN goes to the send's VERP address, and the mailbox really is gone.
    svc.bounce_intake.ingest_message(world.dsn(sent), source="imap")
    [notice] = svc.outbox.notices(team_id=team.id)
    assert notice.member_id == owner.id  # the owner, not the sender who paid
