"""The composition root: core services built once from settings, shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from core.accounts import Accounts
from core.api.contacts import ApiContacts
from core.api.service import ApiService
from core.api.webhooks import WebhookPolicy
from core.bounces.intake import BounceIntakeService
from core.bounces.refunds import Refunds
from core.bounces.webhook_secrets import WebhookSecrets
from core.contributions import Contributions
from core.credit_history import CreditHistory
from core.data_requests import DataRequests, PersonPreviews, stale_email_rechecker
from core.enrichment.csv_enrich import CsvEnrichment
from core.enrichment.jobs import EnrichmentJobs
from core.finder.verification import stored_verify_batch
from core.identities import Identities
from core.ledger import Ledger
from core.mailboxes.connections import Mailboxes
from core.mailboxes.providers import MxLookup
from core.mailboxes.sync import MailboxSync, ReplyHook
from core.outbox import Outbox
from core.rate_limits import RateLimits
from core.secrets import SecretBox
from core.sending.relays import Relays
from core.sending.service import Sending
from core.settings import Settings, get_settings
from core.sources.database import DatabaseSource
from core.sources.registry import build_sources
from core.team_contacts.export import ContactExports
from core.team_contacts.lists import ContactLists
from core.team_contacts.service import TeamContacts
from core.usage.delivery import DigestDeliveries
from core.usage.digest import UsageDigests
from core.usage.overview import CreditOverviews
from core.verify.config import VerifierConfig
from core.verify.pipeline import EmailVerifier
from core.waterfall import Waterfalls
from storage.db import make_engine
from storage.models.enums import ContactSource

if TYPE_CHECKING:
    from core.jobs.tasks import Jobs


def verifier_config(st: Settings) -> VerifierConfig:
    """The email verifier's config from the TRIBUTARY_VERIFY_* settings."""
    return VerifierConfig(
        dns_nameservers=tuple(st.verify_dns_nameservers),
        dns_port=st.verify_dns_port,
        smtp_port=st.verify_smtp_port,
        helo_name=st.verify_helo_name,
        mail_from=st.verify_mail_from,
        connect_timeout_s=st.verify_connect_timeout_s,
        command_timeout_s=st.verify_command_timeout_s,
        freshness_window=timedelta(days=st.verify_freshness_days),
        test_environment=st.verify_test_domains,
    )


@dataclass
class Services:
    settings: Settings
    engine: Engine

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Services:
        settings = settings or get_settings()
        return cls(settings=settings, engine=make_engine(settings.database_url))

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.engine)

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.engine, self.ledger)

    @cached_property
    def data_requests(self) -> DataRequests:
        return DataRequests(
            self.engine,
            DatabaseSource(self.engine),
            accounts=self.accounts,
            reverify=stale_email_rechecker(self.engine, self.email_verifier),
            freshness_window=timedelta(days=self.settings.verify_freshness_days),
            hold_timeout_s=self.settings.data_request_hold_timeout_s,
            lease_s=self.settings.data_request_lease_s,
            sources=self.waterfalls.for_team,
        )

    @cached_property
    def api(self) -> ApiService:
        st = self.settings
        return ApiService.build(
            self.engine,
            self.accounts,
            self.data_requests,
            self.csv_enrichment,
            self.email_verifier,
            job_dir=Path(st.api_job_dir),
            enqueue=lambda job_id, spec: self.job_queue.api_enrichment(job_id, spec),
            redis_url=st.redis_url,
            redis_prefix=st.api_redis_prefix,
            webhook_policy=WebhookPolicy(st.api_webhook_max_attempts, st.api_webhook_backoff_s),
            contacts=ApiContacts(self.team_contacts, self.contact_lists, self.contact_exports),
        )

    @cached_property
    def job_queue(self) -> Jobs:
        """The huey tasks, for enqueueing from this process (workers build their own)."""
        from core.jobs.tasks import Jobs

        return Jobs(self)

    @cached_property
    def usage_digests(self) -> UsageDigests:
        return UsageDigests(self.engine, self.ledger, self.accounts)

    @cached_property
    def digest_deliveries(self) -> DigestDeliveries:
        return DigestDeliveries(
            self.engine, self.usage_digests, self.accounts, lease_s=self.settings.digest_delivery_lease_s
        )

    @cached_property
    def identities(self) -> Identities:
        return Identities(self.engine, self.accounts)

    @cached_property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.engine)

    @cached_property
    def credit_overviews(self) -> CreditOverviews:
        return CreditOverviews(self.engine, self.accounts)

    @cached_property
    def person_previews(self) -> PersonPreviews:
        return PersonPreviews(self.engine)

    @cached_property
    def email_verifier(self) -> EmailVerifier:
        return EmailVerifier(verifier_config(self.settings))

    @cached_property
    def bounce_rechecker(self) -> EmailVerifier:
        """The verifier that re-checks a bounced mailbox. No in-call retries of 4xx (greylisting):
        the bounce is simply re-checked later on the refund schedule, and no webhook request or
        mailbox poll waits minutes for a retry."""
        return EmailVerifier(replace(verifier_config(self.settings), temp_retries=0))

    @cached_property
    def waterfalls(self) -> Waterfalls:
        verify_batch = stored_verify_batch(self.engine, self.email_verifier)
        sources = build_sources(
            self.engine,
            self.settings.providers,
            verify_batch,
            finder_max_candidates=self.settings.finder_max_candidates,
            finder_batch_size=self.settings.finder_batch_size,
        )
        return Waterfalls(self.engine, sources, accounts=self.accounts, validate=lambda a: verify_batch([a])[0])

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.engine)

    @cached_property
    def refunds(self) -> Refunds:
        return Refunds(self.engine, self.ledger, recheck=self.bounce_rechecker.verify_sync)

    @cached_property
    def credit_history(self) -> CreditHistory:
        return CreditHistory(self.engine, self.ledger, self.refunds)

    @cached_property
    def bounce_intake(self) -> BounceIntakeService:
        return BounceIntakeService(self.engine, self.refunds, verp_key=self._verp_key)

    @cached_property
    def relays(self) -> Relays:
        return Relays(self.engine, self.accounts)

    @cached_property
    def sending(self) -> Sending:
        return Sending(
            self.engine,
            self.accounts,
            self.relays,
            bounce_address=self.settings.bounce_address,
            timeout_s=self.settings.smtp_timeout_s,
            ca_file=self.settings.smtp_ca_file,
            verp_key=self._verp_key,
        )

    @property
    def _verp_key(self) -> str | None:
        return self.settings.verp_key.get_secret_value() if self.settings.verp_key else None

    @cached_property
    def secret_box(self) -> SecretBox:
        """Raises SecretsError when TRIBUTARY_SECRET_KEYS is missing or wrong (only where a secret is needed)."""
        return SecretBox.from_settings(self.settings)

    @cached_property
    def webhook_secrets(self) -> WebhookSecrets:
        return WebhookSecrets(self.engine, self.accounts, lambda: self.secret_box)

    @cached_property
    def contributions(self) -> Contributions:
        return Contributions(self.engine, self.settings.contributor_key.get_secret_value())

    @cached_property
    def mailboxes(self) -> Mailboxes:
        return Mailboxes(self.engine, self.accounts, lambda: self.secret_box)

    def mailbox_sync(self, on_reply: ReplyHook | None = None) -> MailboxSync:
        """The mailbox sync; `on_reply` is the engagement service's hook (wired where it exists)."""
        st = self.settings
        return MailboxSync(
            self.engine,
            self.accounts,
            self.mailboxes,
            self.contributions,
            MxLookup(verifier_config(st)),
            max_messages=st.mailbox_sync_max_messages,
            mx_lookups=st.mailbox_mx_lookups_per_sync,
            phone_region=st.mailbox_phone_region,
            on_reply=on_reply,
        )

    @cached_property
    def enrichment_jobs(self) -> EnrichmentJobs:
        return EnrichmentJobs(
            self.engine,
            self.data_requests,
            accounts=self.accounts,
            workers=self.settings.enrich_workers,
            hold_timeout_s=self.settings.enrich_hold_timeout_s,
        )

    @cached_property
    def csv_enrichment(self) -> CsvEnrichment:
        return CsvEnrichment(self.enrichment_jobs, self.contributions, save_contacts=self._save_uploaded_contacts)

    def _save_uploaded_contacts(self, team_id: int, member_id: int, person_ids: list[int]) -> None:
        """People an upload matched become the uploading member's contacts (source csv)."""
        self.team_contacts.save(self.accounts.member(member_id, team_id), person_ids, ContactSource.CSV)

    @cached_property
    def team_contacts(self) -> TeamContacts:
        return TeamContacts(self.engine, self.accounts)

    @cached_property
    def contact_lists(self) -> ContactLists:
        return ContactLists(self.engine, self.team_contacts)

    @cached_property
    def contact_exports(self) -> ContactExports:
        return ContactExports(self.engine, self.team_contacts, self.accounts, self.ledger)
