"""The composition root: core services built once from settings, shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
from core.crm.hubspot import HubSpotContacts
from core.crm.service import CrmSyncs
from core.data_requests import DataRequests, PersonPreviews, stale_email_rechecker
from core.engagement import Engagement, ReplyOutcome
from core.enrichment.csv_enrich import CsvEnrichment
from core.enrichment.jobs import EnrichmentJobs
from core.finder.verification import stored_verify_batch
from core.identities import Identities
from core.job_changes import JobChanges
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
from core.sheets.service import SheetsService
from core.sources.database import DatabaseSource
from core.sources.registry import build_sources
from core.team_contacts.accounts import TeamAccounts
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
from storage.timeutil import utcnow

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
            rate_limits=self.rate_limits,
            webhook_policy=WebhookPolicy(
                st.api_webhook_max_attempts, st.api_webhook_backoff_s, allow_private=st.api_webhook_allow_private
            ),
            contacts=ApiContacts(self.team_contacts, self.contact_lists, self.contact_exports, self.team_accounts),
        )

    @cached_property
    def job_queue(self) -> Jobs:
        """The huey tasks, for enqueueing from this process (workers build their own)."""
        from core.jobs.tasks import Jobs

        return Jobs(self)

    @cached_property
    def usage_digests(self) -> UsageDigests:
        return UsageDigests(self.engine, self.ledger, self.accounts, job_changes=self.job_changes)

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
        return RateLimits.build(self.engine, self.settings.redis_url, self.settings.rate_limit_redis_prefix)

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
    def engagement(self) -> Engagement:
        return Engagement(
            self.engine,
            window_days=self.settings.engagement_window_days,
            delivery_grace_hours=self.settings.engagement_delivery_grace_hours,
        )

    def observe_reply(
        self, from_address: str, in_reply_to: str | None, references: str | None, received_at: datetime
    ) -> ReplyOutcome:
        """A reply seen in any mailbox (the reply mailbox poll, a connected mailbox's sync): its
        address becomes likely_to_engage when it answers a send of ours from that send's recipient."""
        return self.engagement.observe_reply(from_address, in_reply_to, references, received_at)

    @cached_property
    def job_changes(self) -> JobChanges:
        return JobChanges(self.engine, self.accounts)

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
    def crm(self) -> CrmSyncs:
        st = self.settings
        return CrmSyncs(
            self.engine, self.accounts, self.contributions, self.team_contacts, self.data_requests,
            lambda: self.secret_box,
            lambda kind, token: HubSpotContacts(
                st.hubspot_api_url, token, requests_per_10s=st.hubspot_requests_per_10s
            ),
            cursor_overlap_s=st.crm_cursor_overlap_s,
            sync_interval=timedelta(minutes=max(1, st.crm_sync_interval_min)),
        )  # fmt: skip

    @cached_property
    def mailboxes(self) -> Mailboxes:
        return Mailboxes(self.engine, self.accounts, lambda: self.secret_box)

    def mailbox_sync(self, on_reply: ReplyHook | None = None) -> MailboxSync:
        """The mailbox sync; replies it sees go to engagement (`observe_reply`) unless `on_reply` is given."""
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
            on_reply=on_reply or self._reply_to_engagement,
        )

    def _reply_to_engagement(
        self, from_address: str, in_reply_to: str | None, references: tuple[str, ...], received_at: datetime | None
    ) -> None:
        self.observe_reply(from_address, in_reply_to, " ".join(references) or None, received_at or utcnow())

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

    def _save_uploaded_contacts(
        self, team_id: int, member_id: int, person_ids: list[int], source: ContactSource = ContactSource.CSV
    ) -> None:
        """People an upload (a CSV file, a sheet) matched become the uploading member's contacts."""
        self.team_contacts.save(self.accounts.member(member_id, team_id), person_ids, source)

    @cached_property
    def sheets(self) -> SheetsService:
        """The Google Sheets add-on's jobs (its chunks run on this deployment's workers)."""
        return SheetsService(
            self.engine,
            self.accounts,
            self.enrichment_jobs,
            lambda: self.job_queue.enrichment.engine,
            lambda: self.secret_box,
            max_rows=self.settings.sheets_max_rows,
        )

    @cached_property
    def team_contacts(self) -> TeamContacts:
        return TeamContacts(self.engine, self.accounts)

    @cached_property
    def team_accounts(self) -> TeamAccounts:
        return TeamAccounts(self.engine, self.team_contacts)

    @cached_property
    def contact_lists(self) -> ContactLists:
        return ContactLists(self.engine, self.team_contacts)

    @cached_property
    def contact_exports(self) -> ContactExports:
        return ContactExports(self.engine, self.team_contacts, self.accounts, self.ledger)
