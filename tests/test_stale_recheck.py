"""A stale "verified" is re-checked over real DNS and SMTP (the loopback mail internet) before
anyone pays for it; a fresh one is not probed again."""

from datetime import timedelta

from core.people.contacts import NewEmail, NewPerson, add_person
from core.services import Services
from core.settings import Settings
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow
from tests.mailnet.fixtures import mailnet  # noqa: F401


def test_stale_verifications_are_rechecked_before_charging(db_url, engine, mailnet) -> None:  # noqa: F811
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        verify_dns_nameservers=["127.0.0.1"],
        verify_dns_port=mailnet.dns_port,
        verify_smtp_port=mailnet.smtp_port,
        verify_connect_timeout_s=1.0,
        verify_command_timeout_s=2.0,
        verify_test_domains=True,
    )
    svc = Services(settings=settings, engine=engine)
    svc.accounts.create_team("acme", plan="free")
    svc.accounts.add_member("acme", "rep@acme.test")
    old = utcnow() - timedelta(days=45)

    def person(name, address, checked_at):
        return add_person(
            engine, NewPerson(full_name=name, emails=[NewEmail(address, EmailStatus.VERIFIED, 95, checked_at)])
        )

    still_there = person("Alice Known", "alice@known.test", old)
    gone = person("Nobody Home", "nobody@known.test", old)
    fresh = person("Bob Known", "bob@known.test", utcnow())

    connections_before = mailnet.connections()
    assert svc.data_requests.access_email("acme", "rep@acme.test", fresh).charged_credits == 1
    assert mailnet.connections() == connections_before  # fresh: no probe

    result = svc.data_requests.access_email("acme", "rep@acme.test", still_there)
    assert result.charged_credits == 1 and result.email.status == EmailStatus.VERIFIED
    assert mailnet.connections() > connections_before  # stale: probed again

    result = svc.data_requests.access_email("acme", "rep@acme.test", gone)
    assert result.charged_credits == 0 and result.email.status == EmailStatus.INVALID
    assert svc.ledger.balance(svc.accounts.team("acme").id).available_credits == 98
