"""A generated mailbox of a few hundred messages on a loopback IMAP server (pymap), synced on SQLite
and PostgreSQL: the right facts, nothing of the content, nothing new shared before it is verified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine

from core.contributions import ContactRecord
from core.jobs.tasks import Jobs
from core.mailboxes.imap import ImapAccount
from core.people.contacts import NewEmail, NewPerson, add_person
from storage.models import (
    CandidateSource,
    ContactCandidate,
    ContributionObservation,
    DomainEmailProvider,
    EmailAddress,
    MailboxConnection,
    Person,
)
from storage.models.contributor import SourceKind
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow
from tests.mailboxes import corpus as gen
from tests.mailboxes.helpers import (
    OPERATOR,
    Replies,
    connect,
    deliver_all,
    rows,
    services_for,
    team_with_member,
    text_of_every_table,
)
from tests.mailnet import MailNet
from tests.mailpeers.imap import RunningImap, start_imap

MESSAGES = 300


@pytest.fixture(scope="module")
def corpus() -> gen.Corpus:
    return gen.build(size=MESSAGES)


@pytest.fixture(scope="module")
def full_imap(corpus: gen.Corpus) -> Iterator[RunningImap]:
    """The generated mailbox. Syncs are read-only, so every test can read the same one."""
    running = start_imap()
    running.empty()
    deliver_all(running, corpus.messages)
    yield running
    running.stop()


def _cand(engine: Engine, email: str):
    found = rows(engine, ContactCandidate.__table__, ContactCandidate.__table__.c.email == email)
    return found[0] if found else None


def test_a_mailbox_gives_the_right_facts_and_keeps_no_content(engine, db_url, tmp_path, corpus, full_imap) -> None:
    svc = services_for(engine, db_url, tmp_path)
    member = team_with_member(svc, "alpha")
    known = next(iter(corpus.signers.values()))  # already in the shared database, verified
    add_person(engine, NewPerson(full_name=known.name, company=known.company, domain=known.domain,
                                 emails=[NewEmail(known.address, EmailStatus.VERIFIED, 95, utcnow())]))
    connect(svc, "alpha", member, full_imap)
    svc.mailboxes.add_private(OPERATOR, "alpha", member, gen.PRIVATE_DOMAIN)
    replies = Replies()
    ticks: list[tuple[int, int]] = []

    result = svc.mailbox_sync(on_reply=replies).sync("alpha", member, progress=lambda d, t: ticks.append((d, t)))

    assert result.messages == MESSAGES and ticks[-1] == (MESSAGES, MESSAGES)
    assert result.skipped_private >= 1 and result.skipped_personal >= len(corpus.webmail)
    # Signed senders: title, company, phone and website read from the signature, kept team-private.
    for address, who in list(corpus.signers.items())[1:]:
        cand = _cand(engine, address)
        assert cand is not None, address
        assert (cand.full_name, cand.title, cand.company, cand.phone_e164, cand.domain) == (
            who.name, who.title, who.company, who.phone, who.domain
        )
    # People named in headers and invitations (display names and CNs).
    for address, name in corpus.named.items():
        if address == known.address:
            continue
        cand = _cand(engine, address)
        assert cand is not None and cand.full_name == name, address
    # The known person was confirmed: an observation from the mailbox inflow, no team on it.
    obs = rows(engine, ContributionObservation.__table__, ContributionObservation.__table__.c.value == known.address)
    assert [o.source_kind for o in obs] == [SourceKind.MAILBOX.value]
    # Nothing new is shared before it is verified or corroborated: the only person is the known one.
    assert len(rows(engine, Person.__table__)) == 1
    assert {e.address for e in rows(engine, EmailAddress.__table__)} == {known.address}
    # Webmail, role and private addresses left no trace.
    text = text_of_every_table(engine)
    for address in corpus.webmail | corpus.private:
        assert address not in text
    assert gen.PRIVATE_DOMAIN not in text.replace(f'"{gen.PRIVATE_DOMAIN}"', "")  # only the private entry itself
    assert "info@" not in text
    # No subject, body, invitation summary or description anywhere; the password is encrypted.
    for sentinel in (gen.SUBJECT_SENTINEL, gen.BODY_SENTINEL, "quarterly pricing", "40000", "agenda"):
        assert sentinel not in text, sentinel
    assert "imap-pass" not in text
    # Read-only: every message still unseen on the server.
    assert full_imap.unseen() == MESSAGES
    # The engagement hook saw each reply with its ids.
    assert [r[1] for r in replies.seen] == corpus.reply_ids
    assert all(len(r[2]) == 2 and r[3] is not None for r in replies.seen)
    # Incremental: a second run reads nothing new.
    again = svc.mailbox_sync().sync("alpha", member)
    assert again.messages == 0
    assert svc.mailboxes.status(OPERATOR, "alpha")[0].messages_read == MESSAGES


def test_facts_are_shared_once_a_second_team_supplies_them(engine, db_url, tmp_path, corpus, full_imap) -> None:
    svc = services_for(engine, db_url, tmp_path)
    team_with_member(svc, "alpha", "a@alpha.test")
    team_with_member(svc, "beta", "b@beta.test")
    connect(svc, "alpha", "a@alpha.test", full_imap)
    first = svc.mailbox_sync().sync("alpha", "a@alpha.test")
    assert first.shared == 0 and rows(engine, Person.__table__) == []
    connect(svc, "beta", "b@beta.test", full_imap)  # an independent contributor sees the same people
    second = svc.mailbox_sync().sync("beta", "b@beta.test")
    assert second.shared > 0
    people = rows(engine, Person.__table__)
    assert people
    shared_emails = {e.address for e in rows(engine, EmailAddress.__table__)}
    assert shared_emails and all(e.split("@")[1].endswith(".test") for e in shared_emails)
    # Corroborated, not SMTP-verified: shared as unverified (not chargeable).
    assert {e.status for e in rows(engine, EmailAddress.__table__)} == {EmailStatus.UNVERIFIED.value}
    text = text_of_every_table(engine)
    for table_text in ("alpha", "beta"):
        # team names appear only in the team table itself
        assert all(table_text not in str(o) for o in rows(engine, ContributionObservation.__table__))
        assert all(table_text not in str(p) for p in people)
    assert gen.SUBJECT_SENTINEL not in text


def test_a_team_opted_out_keeps_facts_private_and_a_member_opted_out_keeps_nothing(
    engine, db_url, tmp_path, corpus, full_imap
) -> None:
    svc = services_for(engine, db_url, tmp_path)
    team_with_member(svc, "quiet", "q@quiet.test", contribute=False)
    team_with_member(svc, "alpha", "a@alpha.test")
    team_with_member(svc, "alpha2", "a2@alpha2.test")
    connect(svc, "quiet", "q@quiet.test", full_imap)
    connect(svc, "alpha", "a@alpha.test", full_imap)
    connect(svc, "alpha2", "a2@alpha2.test", full_imap)
    svc.mailboxes.set_contribute(OPERATOR, "alpha2", "a2@alpha2.test", False)
    replies = Replies()
    quiet = svc.mailbox_sync(on_reply=replies).sync("quiet", "q@quiet.test")
    assert not quiet.contributed and quiet.candidates > 0 and replies.seen == []
    opted = svc.mailbox_sync(on_reply=replies).sync("alpha2", "a2@alpha2.test")
    assert opted.messages == MESSAGES and opted.candidates == 0 and replies.seen == []
    # Neither the opted-out team's candidates nor the opted-out member's mailbox corroborate alpha's facts.
    alpha = svc.mailbox_sync().sync("alpha", "a@alpha.test")
    assert alpha.shared == 0
    assert rows(engine, Person.__table__) == [] and rows(engine, ContributionObservation.__table__) == []
    assert rows(engine, DomainEmailProvider.__table__) == []
    team_ids = {c.team_id for c in rows(engine, ContactCandidate.__table__)}
    assert team_ids == {svc.accounts.team("quiet").id, svc.accounts.team("alpha").id}


def test_disconnect_removes_only_what_this_mailbox_supplied(engine, db_url, tmp_path, corpus, full_imap) -> None:
    svc = services_for(engine, db_url, tmp_path)
    member = team_with_member(svc, "alpha")
    signers = list(corpus.signers.values())
    uploaded, other = signers[0], signers[1]
    team_id = svc.accounts.team("alpha").id
    # The team's CSV already had one signer (name and email only), before the mailbox.
    svc.contributions.contribute(team_id, [ContactRecord(full_name=uploaded.name, email=uploaded.address)],
                                 SourceKind.CSV)
    connect(svc, "alpha", member, full_imap)
    svc.mailbox_sync().sync("alpha", member)
    before = _cand(engine, uploaded.address)
    assert before.title == uploaded.title and before.phone_e164 == uploaded.phone
    # A CSV arriving after the mailbox vouches for the other signer's title too.
    svc.contributions.contribute(
        team_id, [ContactRecord(full_name=other.name, email=other.address, title=other.title)], SourceKind.CSV
    )

    done = svc.mailboxes.disconnect(OPERATOR, "alpha", member)

    assert done.candidates_deleted > 0 and done.candidates_trimmed == 2
    kept = _cand(engine, uploaded.address)
    assert (kept.full_name, kept.email) == (uploaded.name, uploaded.address)
    assert (kept.title, kept.company, kept.phone_e164) == (None, None, None)  # only the mailbox said those
    other_kept = _cand(engine, other.address)
    assert other_kept.title == other.title and other_kept.phone_e164 is None
    remaining = {c.email for c in rows(engine, ContactCandidate.__table__)}
    assert remaining == {uploaded.address, other.address}
    assert not any(s.source.startswith("mailbox:") for s in rows(engine, CandidateSource.__table__))
    assert svc.mailboxes.status(OPERATOR, "alpha") == []


def test_new_messages_are_read_incrementally(engine, db_url, tmp_path) -> None:
    small = start_imap()
    try:
        small.empty()
        svc = services_for(engine, db_url, tmp_path)
        member = team_with_member(svc, "alpha")
        connect(svc, "alpha", member, small)
        extra = gen.build(seed=3, size=12)
        deliver_all(small, extra.messages[:6])
        assert svc.mailbox_sync().sync("alpha", member).messages == 6
        deliver_all(small, extra.messages[6:])
        assert svc.mailbox_sync().sync("alpha", member).messages == 6
        assert svc.mailbox_sync().sync("alpha", member).messages == 0
        status = svc.mailboxes.status(OPERATOR, "alpha")[0]
        assert status.messages_read == 12 and status.last_synced_at > utcnow() - timedelta(minutes=5)
        # A new UIDVALIDITY means the UIDs were renumbered: the mailbox is read again from the start.
        with engine.begin() as conn:
            conn.execute(MailboxConnection.__table__.update().values(uid_validity=1))
        assert svc.mailbox_sync().sync("alpha", member).messages == 12
        # The periodic task syncs every connected mailbox (nothing new now).
        assert Jobs(svc).sync_mailboxes.call_local() == 1
        assert small.unseen() == 12
    finally:
        small.stop()


def test_company_email_providers_are_kept_per_domain_without_personal_data(engine, db_url, tmp_path) -> None:
    net = MailNet()
    net.add_domain("acme.test", hosts=[net.add_host("aspmx.l.google.com")])
    net.add_domain("initech.test", hosts=[net.add_host("initech-test.mail.protection.outlook.com")])
    with net:
        svc = services_for(engine, db_url, tmp_path, verify_dns_nameservers=["127.0.0.1"],
                           verify_dns_port=net.dns_port, mailbox_mx_lookups_per_sync=10)
        member = team_with_member(svc, "alpha")
        unused = ImapAccount("127.0.0.1", 1, "plain", "u", "p")  # ingest_messages reads no server
        svc.mailboxes.connect(OPERATOR, "alpha", member, unused, check_login=False)
        sent = []
        for n, (sender, extra) in enumerate([("Jane Doe <jane@acme.test>", {"X-Gm-Message-State": "x"}),
                                             ("Kim Lee <kim@initech.test>", {}),
                                             ("Pat <pat@gmail.com>", {"X-Gm-Message-State": "x"})]):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = sender, member, f"{gen.SUBJECT_SENTINEL}-{n}"
            for k, v in extra.items():
                msg[k] = v
            msg.set_content("hi")
            sent.append(bytes(msg))
        result = svc.mailbox_sync().ingest_messages("alpha", member, sent)
        got = {(r.domain, r.provider, r.evidence) for r in rows(engine, DomainEmailProvider.__table__)}
        assert got == {("acme.test", "google", "headers"), ("acme.test", "google", "mx"),
                       ("initech.test", "microsoft", "mx")}
        assert result.providers == 3
        # A member who opts out feeds no aggregate either.
        svc.mailboxes.set_contribute(OPERATOR, "alpha", member, False)
        with engine.begin() as conn:
            conn.execute(DomainEmailProvider.__table__.delete())
        assert svc.mailbox_sync().ingest_messages("alpha", member, sent).providers == 0
        assert rows(engine, DomainEmailProvider.__table__) == []
