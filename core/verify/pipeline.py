"""The email verification pipeline: syntax -> domain facts -> DNS -> SMTP -> status, reasons, score.

`EmailVerifier.verify_many` takes a whole batch, groups it by domain, resolves each domain once,
probes each domain's addresses in shared sessions, and yields results as soon as they are known.
A bad item never disturbs the rest of the batch: it becomes an `invalid` (or `unknown`) result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from core.errors import check
from core.verify.config import VerifierConfig
from core.verify.dns import MailResolver, MailRoute
from core.verify.domain_facts import DomainFacts, domain_facts
from core.verify.probe import SmtpProber, TargetProbe
from core.verify.reasons import ANNOTATION_ORDER, Reason
from core.verify.replies import Outcome
from core.verify.result import EmailResult, score_for
from core.verify.syntax import ParsedAddress, SyntaxProblem, parse_address, suggest_domain
from storage.models.enums import EmailStatus
from storage.timeutil import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a probe outcome makes of an accepted-or-not recipient (ACCEPTED is decided with catch-all).
_OUTCOME_STATUS: dict[Outcome, tuple[EmailStatus, Reason]] = {
    Outcome.NOT_FOUND: (EmailStatus.INVALID, Reason.MAILBOX_NOT_FOUND),
    Outcome.DISABLED: (EmailStatus.INVALID, Reason.DISABLED),
    Outcome.UNSAFE_ADDRESS: (EmailStatus.INVALID, Reason.SYNTAX),
    Outcome.FULL_INBOX: (EmailStatus.UNKNOWN, Reason.FULL_INBOX),  # exists, cannot take mail now
    Outcome.BLOCKED: (EmailStatus.UNKNOWN, Reason.BLOCKED),
    Outcome.GREYLISTED: (EmailStatus.UNKNOWN, Reason.GREYLISTED),
    Outcome.TEMPORARY: (EmailStatus.UNKNOWN, Reason.TEMPORARY),
    Outcome.TIMEOUT: (EmailStatus.UNKNOWN, Reason.TIMEOUT),
    Outcome.UNREACHABLE: (EmailStatus.UNKNOWN, Reason.UNREACHABLE),
    Outcome.SMTPUTF8_UNSUPPORTED: (EmailStatus.UNKNOWN, Reason.SMTPUTF8_UNSUPPORTED),
    Outcome.PROTOCOL_ERROR: (EmailStatus.UNKNOWN, Reason.PROTOCOL_ERROR),
}
_ROUTE_STATUS = {
    Reason.DOMAIN_NOT_FOUND: EmailStatus.INVALID,
    Reason.NULL_MX: EmailStatus.INVALID,
    Reason.NO_MX: EmailStatus.INVALID,
    Reason.DNS_TIMEOUT: EmailStatus.UNKNOWN,
    Reason.DNS_ERROR: EmailStatus.UNKNOWN,
}


@dataclass(frozen=True)
class _Item:
    index: int
    original: str
    parsed: ParsedAddress
    facts: DomainFacts
    suggestion: str | None


def _annotations(facts: DomainFacts | None, suggestion: str | None) -> list[str]:
    present = {
        Reason.POSSIBLE_TYPO: suggestion is not None,
        Reason.DISPOSABLE: facts is not None and facts.disposable,
        Reason.ROLE_BASED: facts is not None and facts.role_based,
        Reason.FREE_PROVIDER: facts is not None and facts.free_provider,
    }
    return [str(reason) for reason in ANNOTATION_ORDER if present[reason]]


class EmailVerifier:
    """Holds the caches (DNS TTLs, catch-all per domain) and limits; reuse one for many batches."""

    def __init__(self, config: VerifierConfig | None = None, *, clock: Callable[[], datetime] = utcnow):
        self.config = config or VerifierConfig()
        self._clock = clock
        self.resolver = MailResolver(self.config)
        self.prober = SmtpProber(self.config)

    # ---- public API
    async def verify(self, email: str) -> EmailResult:
        async for result in self.verify_many([email]):
            return result
        raise AssertionError("verify_many yields one result per input")

    async def verify_many(self, emails: Iterable[str]) -> AsyncIterator[EmailResult]:
        """One result per input, in completion order (each carries `email` as given)."""
        async for _, result in self.verify_indexed(emails):
            yield result

    async def verify_indexed(self, emails: Iterable[str]) -> AsyncIterator[tuple[int, EmailResult]]:
        """Like verify_many, with each result's position in the input."""
        by_domain: dict[str, list[_Item]] = {}
        early: list[tuple[int, EmailResult]] = []
        for index, raw in enumerate(emails):
            parsed = parse_address(raw, test_environment=self.config.test_environment)
            if isinstance(parsed, SyntaxProblem):
                early.append((index, self._syntax_result(parsed)))
                continue
            facts = domain_facts(parsed.local_part, parsed.ascii_domain)
            suggestion = suggest_domain(parsed.ascii_domain)
            item = _Item(index, parsed.original, parsed, facts, suggestion)
            if facts.disposable:
                # Throwaway inboxes are worthless as contact data; not worth an SMTP conversation.
                early.append((index, self._result(item, EmailStatus.UNKNOWN, [], "disposable email domain")))
                continue
            by_domain.setdefault(parsed.ascii_domain, []).append(item)
        for pair in early:
            yield pair

        queue: asyncio.Queue[list[tuple[int, EmailResult]]] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._domain_task(domain, items, queue), name=f"verify:{domain}")
            for domain, items in by_domain.items()
        ]
        remaining = sum(len(items) for items in by_domain.values())
        try:
            while remaining:
                batch = await queue.get()
                remaining -= len(batch)
                for pair in batch:
                    yield pair
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def verify_many_sync(self, emails: Iterable[str]) -> list[EmailResult]:
        """Blocking wrapper for sync callers: results in input order."""
        emails = list(emails)

        async def collect() -> list[EmailResult]:
            results: list[EmailResult | None] = [None] * len(emails)
            async for index, result in self.verify_indexed(emails):
                results[index] = result
            check(all(r is not None for r in results), "every email got a result")
            return results  # type: ignore[return-value]

        return run_blocking(collect)

    def verify_sync(self, email: str) -> EmailResult:
        return self.verify_many_sync([email])[0]

    # ---- steps
    async def _domain_task(
        self, domain: str, items: list[_Item], queue: asyncio.Queue[list[tuple[int, EmailResult]]]
    ) -> None:
        try:
            route = await self.resolver.route(domain)
            if route.problem is not None:
                await queue.put([(i.index, self._route_result(i, route)) for i in items])
                return
            size = self.config.max_rcpt_per_session
            unique = list({i.parsed.key: i.parsed for i in items}.values())
            chunks = [unique[n : n + size] for n in range(0, len(unique), size)]
            await asyncio.gather(*(self._probe_chunk(route, chunk, items, queue) for chunk in chunks))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one domain's results, not the batch
            log.exception("verification of %s failed", domain)
            done = [
                (i.index, self._result(i, EmailStatus.UNKNOWN, [Reason.PROTOCOL_ERROR], f"internal error: {exc}"))
                for i in items
            ]
            await queue.put(done)

    async def _probe_chunk(
        self,
        route: MailRoute,
        chunk: list[ParsedAddress],
        items: list[_Item],
        queue: asyncio.Queue[list[tuple[int, EmailResult]]],
    ) -> None:
        probes = await self.prober.probe(route, chunk)
        keys = set(probes)
        await queue.put([(i.index, self._probe_result(i, probes[i.parsed.key])) for i in items if i.parsed.key in keys])

    # ---- decisions
    def _result(
        self,
        item: _Item,
        status: EmailStatus,
        reasons: list[Reason],
        detail: str | None,
        *,
        mx_host: str | None = None,
        probe: TargetProbe | None = None,
    ) -> EmailResult:
        all_reasons = tuple([str(r) for r in reasons] + _annotations(item.facts, item.suggestion))
        suggestion = f"{item.parsed.local_part}@{item.suggestion}" if item.suggestion else None
        return EmailResult(
            email=item.original,
            normalized=item.parsed.normalized,
            status=status,
            reasons=all_reasons,
            score=score_for(status, all_reasons),
            checked_at=self._clock(),
            mx_host=mx_host,
            evidence=tuple(probe.steps) if probe else (),
            suggestion=suggestion,
            detail=detail,
            catch_all=probe.catch_all if probe else None,
        )

    def _syntax_result(self, problem: SyntaxProblem) -> EmailResult:
        return EmailResult(
            email=problem.original,
            status=EmailStatus.INVALID,
            reasons=(str(Reason.SYNTAX),),
            score=0,
            checked_at=self._clock(),
            detail=problem.message,
        )

    def _route_result(self, item: _Item, route: MailRoute) -> EmailResult:
        check(route.problem is not None, "a route without hosts names its problem")
        return self._result(item, _ROUTE_STATUS[route.problem], [route.problem], route.detail)

    def _probe_result(self, item: _Item, probe: TargetProbe) -> EmailResult:
        if probe.outcome == Outcome.ACCEPTED:
            if probe.catch_all is True:
                status, reason, detail = EmailStatus.ACCEPT_ALL, Reason.CATCH_ALL, "the domain accepts any address"
            elif probe.catch_all is False:
                status, reason, detail = EmailStatus.VERIFIED, None, "the mailbox server accepted this recipient"
            else:
                status, reason = EmailStatus.UNKNOWN, Reason.CATCH_ALL_UNDETERMINED
                detail = "accepted, but the server would not say whether it accepts every address"
            reasons = [reason] if reason else []
            return self._result(item, status, reasons, detail, mx_host=probe.mx_host, probe=probe)
        status, reason = _OUTCOME_STATUS[probe.outcome]
        return self._result(item, status, [reason], probe.detail, mx_host=probe.mx_host, probe=probe)


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
