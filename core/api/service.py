"""The API's one entry into core: who is calling (a key), how often, and the operations they ask for."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from core.accounts import Accounts
from core.actors import allows, require_see_balance, require_see_usage, require_spend
from core.api.account import CreditsView, UsageFilter, UsagePage, credits_view, usage_page
from core.api.contacts import ApiContacts
from core.api.idempotency import IdempotencyStore
from core.api.jobs import ApiJobs, Enqueue
from core.api.keys import ApiCaller, ApiKeys
from core.api.people import MatchAnswer, MatchQuery, bulk_match, match
from core.api.verification import VerifyAnswer, verify_emails
from core.api.webhooks import WebhookPolicy
from core.data_requests import DataRequests
from core.enrichment.csv_enrich import CsvEnrichment
from core.errors import TributaryError
from core.rate_limits import RateLimits
from core.verify.pipeline import EmailVerifier


@dataclass
class ApiService:
    engine: Engine
    accounts: Accounts
    data_requests: DataRequests
    keys: ApiKeys
    idempotency: IdempotencyStore
    limiter: RateLimits
    jobs: ApiJobs
    verifier: EmailVerifier
    contacts: ApiContacts | None = None  # team contacts, lists, exports (None: not offered)

    @classmethod
    def build(
        cls,
        engine: Engine,
        accounts: Accounts,
        data_requests: DataRequests,
        csv_enrichment: CsvEnrichment,
        verifier: EmailVerifier,
        *,
        job_dir: Path,
        enqueue: Enqueue | None = None,
        rate_limits: RateLimits | None = None,
        webhook_policy: WebhookPolicy | None = None,
        contacts: ApiContacts | None = None,
    ) -> ApiService:
        keys = ApiKeys(engine, accounts)
        return cls(
            engine,
            accounts,
            data_requests,
            keys,
            IdempotencyStore(engine),
            rate_limits or RateLimits.build(engine, None, ""),
            ApiJobs(csv_enrichment, job_dir, enqueue, signing_key=keys.signing_key, webhook_policy=webhook_policy),
            verifier,
            contacts,
        )

    def caller(self, presented_key: str | None) -> ApiCaller:
        return self.keys.authenticate(presented_key)

    def match(self, caller: ApiCaller, query: MatchQuery) -> MatchAnswer:
        require_spend(caller.actor)
        return match(self.engine, self.data_requests, caller, query)

    def bulk_match(self, caller: ApiCaller, queries: list[MatchQuery]) -> list[MatchAnswer | TributaryError]:
        require_spend(caller.actor)
        return bulk_match(self.engine, self.data_requests, caller, queries)

    def credits(self, caller: ApiCaller) -> CreditsView:
        require_see_balance(caller.actor)
        return credits_view(self.accounts.ledger, self.accounts, caller.team.id)

    def usage(self, caller: ApiCaller, flt: UsageFilter) -> UsagePage:
        """Admins see the team's usage; a member sees their own (as in Slack's `/tributary usage`)."""
        if not allows(require_see_usage, caller.actor):
            own = caller.member.email
            if flt.member is not None and flt.member.strip().lower() != own.lower():
                require_see_usage(caller.actor)  # another member's usage: refused, saying who may
            flt = replace(flt, member=own)
        return usage_page(self.engine, self.accounts, caller.team.id, flt)

    def verify(self, caller: ApiCaller, emails: list[str]) -> VerifyAnswer:
        require_spend(caller.actor)
        return verify_emails(self.accounts.ledger, self.verifier, caller, emails)
