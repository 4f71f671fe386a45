"""The SMTP probe of one domain's recipients: MX hosts in order, catch-all detection, retries.

One session carries the catch-all probe and up to `max_rcpt_per_session` targets. A temporary answer
(4xx, greylisting) is retried with exponential backoff (tenacity) in a fresh session, and if it is
still temporary the outcome stays temporary: the caller turns it into `unknown`, never `invalid`.
Sessions are bounded by a global limit and a per-MX-address limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_exponential

from core.verify.config import VerifierConfig
from core.verify.dns import MailHost, MailRoute
from core.verify.replies import RETRYABLE, Outcome, Reply, classify_rcpt, classify_session
from core.verify.smtp import SmtpError, SmtpSession, SmtpStep, SmtpTimeout, UnsafeCommand, check_wire_safe
from core.verify.syntax import ParsedAddress

# A server's reply kept as a decision's detail: its code and first words are what explain it.
MAX_STEP_DETAIL_CHARS = 200


@dataclass
class TargetProbe:
    outcome: Outcome
    catch_all: bool | None
    mx_host: str | None
    attempts: int
    steps: list[SmtpStep]
    detail: str | None = None


@dataclass
class _ProbeState:
    catch_all: bool | None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    # Every exchange in order, tagged with the target it is about (None: the whole session).
    steps: list[tuple[str | None, SmtpStep]] = field(default_factory=list)
    probe_outcome: Outcome | None = None
    mx_host: str | None = None
    attempt: int = 0
    answered: set[str] = field(default_factory=set)  # targets this attempt has decided

    def decide(self, key: str, outcome: Outcome, detail: str) -> None:
        self.outcomes[key] = outcome
        self.details[key] = detail
        self.answered.add(key)


class _TlsFailed(Exception):
    pass


class SmtpProber:
    def __init__(self, config: VerifierConfig) -> None:
        self._config = config
        # Keyed per process so the probe mailbox is unguessable yet stable per domain: a greylisting
        # server must see the same (sender, recipient) pair again on the retry to let it through.
        self._secret = secrets.token_bytes(16)
        self._catch_all: dict[str, tuple[float, bool]] = {}
        self._no_tls: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._global: asyncio.Semaphore | None = None
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self.sessions_opened = 0  # for tests and benchmarks

    # -- limits (asyncio primitives belong to one loop; the sync wrapper runs a new loop each call)
    def _limits(self, address: str) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._global is None:
            self._loop = loop
            self._global = asyncio.Semaphore(self._config.max_concurrency)
            self._per_host = {}
        host = self._per_host.get(address)
        if host is None:
            host = self._per_host[address] = asyncio.Semaphore(self._config.per_host_concurrency)
        return host, self._global

    # -- catch-all cache
    def catch_all_cached(self, domain: str) -> bool | None:
        entry = self._catch_all.get(domain)
        if entry is None or time.monotonic() >= entry[0]:
            return None
        return entry[1]

    def _remember_catch_all(self, domain: str, value: bool) -> None:
        self._catch_all[domain] = (time.monotonic() + self._config.catch_all_cache_ttl_s, value)

    def probe_local_part(self, domain: str) -> str:
        digest = hmac.new(self._secret, domain.encode(), hashlib.sha256).hexdigest()[:16]
        return f"tributary-probe-{digest}"

    # -- the probe
    async def probe(self, route: MailRoute, targets: Sequence[ParsedAddress]) -> dict[str, TargetProbe]:
        """Probe `targets` (all at `route.domain`). Keys of the result are `ParsedAddress.key`."""
        state = _ProbeState(catch_all=self.catch_all_cached(route.domain))
        unique = list({t.key: t for t in targets}.values())
        cfg = self._config

        async def attempt() -> bool:
            state.attempt += 1
            state.answered = set()
            todo = [t for t in unique if state.outcomes.get(t.key) in (None, *RETRYABLE)]
            want_probe = state.catch_all is None and (
                state.probe_outcome is None or state.probe_outcome in RETRYABLE
            )
            if state.attempt > 1 and want_probe and not todo:
                # Only the catch-all answer is missing; it matters only if some target was accepted.
                want_probe = any(o == Outcome.ACCEPTED for o in state.outcomes.values())
            if not todo and not want_probe:
                return False
            await self._session(route, todo, want_probe, state)
            still = any(state.outcomes.get(t.key) in RETRYABLE for t in todo)
            probe_pending = (
                state.catch_all is None
                and state.probe_outcome in RETRYABLE
                and any(o == Outcome.ACCEPTED for o in state.outcomes.values())
            )
            return still or probe_pending

        def give_up(retry_state: RetryCallState) -> bool:
            return False

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + cfg.temp_retries),
            wait=wait_exponential(multiplier=cfg.retry_initial_wait_s, max=cfg.retry_max_wait_s),
            retry=retry_if_result(bool),
            retry_error_callback=give_up,  # out of attempts: keep the temporary outcomes as they are
            sleep=asyncio.sleep,
        )
        await retrying(attempt)

        return {
            t.key: TargetProbe(
                outcome=state.outcomes.get(t.key, Outcome.PROTOCOL_ERROR),
                catch_all=state.catch_all,
                mx_host=state.mx_host,
                attempts=state.attempt,
                steps=[step for key, step in state.steps if key is None or key == t.key],
                detail=state.details.get(t.key),
            )
            for t in unique
        }

    async def _session(
        self, route: MailRoute, targets: list[ParsedAddress], want_probe: bool, state: _ProbeState
    ) -> None:
        cfg = self._config
        failure = Outcome.UNREACHABLE
        failure_detail = "no MX host accepted a connection"
        tried = 0
        for host in route.hosts:
            for address in host.addresses:
                if tried >= cfg.max_mx_hosts:
                    break
                tried += 1
                host_limit, global_limit = self._limits(address)
                async with host_limit, global_limit:
                    result = await self._on_host(route, host, address, targets, want_probe, state)
                if result is None:
                    return  # this host answered: the session decided everything it could
                failure, failure_detail = result
        for target in targets:
            state.decide(target.key, failure, failure_detail)

    async def _on_host(
        self,
        route: MailRoute,
        host: MailHost,
        address: str,
        targets: list[ParsedAddress],
        want_probe: bool,
        state: _ProbeState,
    ) -> tuple[Outcome, str] | None:
        """Run the session on one MX address. None if it answered; else why to try the next one."""
        cfg = self._config
        use_tls = cfg.starttls and address not in self._no_tls
        try:
            session, banner = await SmtpSession.connect(
                host.name,
                address,
                cfg.smtp_port,
                connect_timeout_s=cfg.connect_timeout_s,
                command_timeout_s=cfg.command_timeout_s,
            )
        except SmtpTimeout as exc:
            state.steps.append((None, SmtpStep("connect", host.name, None, None, str(exc), state.attempt)))
            return Outcome.TIMEOUT, f"{host.name}: {exc}"
        except (OSError, SmtpError) as exc:
            text = f"{type(exc).__name__}: {exc}"[:MAX_STEP_DETAIL_CHARS]
            state.steps.append((None, SmtpStep("connect", host.name, None, None, text, state.attempt)))
            return Outcome.UNREACHABLE, f"{host.name}: {text}"
        self.sessions_opened += 1
        state.steps.append((None, SmtpStep.of("banner", host.name, banner, state.attempt)))
        if banner.is_temporary:
            await session.quit()
            return classify_session(banner), f"{host.name} is not accepting connections now"
        state.mx_host = host.name
        if not banner.is_positive:
            await session.quit()
            self._decide_all(targets, classify_session(banner), f"{host.name} refused the session", state)
            return None
        try:
            await self._converse(session, route, host, targets, want_probe, use_tls, state)
        except _TlsFailed:
            # Broken TLS on the server side: do what a sending MTA does and retry this host in clear.
            self._no_tls.add(address)
            await session.close()
            return await self._on_host(route, host, address, targets, want_probe, state)
        except SmtpTimeout as exc:
            self._decide_rest(targets, Outcome.TIMEOUT, f"{host.name}: {exc}", state)
            session.abort()
            return None
        except SmtpError as exc:
            # Connection lost mid-session: nothing learnt about the rest, so try them again later.
            self._decide_rest(targets, Outcome.TEMPORARY, f"{host.name}: {exc}", state)
            session.abort()
            return None
        await session.quit()
        return None

    def _decide_all(self, targets: list[ParsedAddress], outcome: Outcome, detail: str, state: _ProbeState) -> None:
        for target in targets:
            state.decide(target.key, outcome, detail)

    def _decide_rest(self, targets: list[ParsedAddress], outcome: Outcome, detail: str, state: _ProbeState) -> None:
        """Give `outcome` to the targets this attempt has not answered yet."""
        for target in targets:
            if target.key not in state.answered:
                state.decide(target.key, outcome, detail)

    async def _converse(
        self,
        session: SmtpSession,
        route: MailRoute,
        host: MailHost,
        targets: list[ParsedAddress],
        want_probe: bool,
        use_tls: bool,
        state: _ProbeState,
    ) -> None:
        if not await self._greet(session, host, targets, use_tls, state):
            return
        utf8 = "SMTPUTF8" in session.extensions
        sendable: list[ParsedAddress] = []
        for target in targets:
            if target.smtputf8 and not utf8:
                state.decide(target.key, Outcome.SMTPUTF8_UNSUPPORTED, f"{host.name} cannot take non-ASCII mailboxes")
            else:
                sendable.append(target)
        if not sendable and not want_probe:
            return
        options = " SMTPUTF8" if utf8 and any(t.smtputf8 for t in sendable) else ""
        reply = await session.command(f"MAIL FROM:<{self._config.mail_from}>{options}")
        self._shared_step(state, host, "mail", reply)
        if not reply.is_positive:
            self._decide_all(sendable, classify_session(reply), f"{host.name} refused our sender", state)
            return
        if want_probe:
            await self._probe_catch_all(session, route, host, state)
        await self._ask_each(session, host, sendable, state)

    @staticmethod
    def _shared_step(state: _ProbeState, host: MailHost, step: str, reply: Reply) -> None:
        """Record a step of the session that every target shares."""
        state.steps.append((None, SmtpStep.of(step, host.name, reply, state.attempt)))

    async def _greet(
        self, session: SmtpSession, host: MailHost, targets: list[ParsedAddress], use_tls: bool, state: _ProbeState
    ) -> bool:
        """EHLO (or HELO), then STARTTLS when offered and wanted. False: refused, targets decided."""
        helo_name = self._config.helo_name
        reply = await session.ehlo(helo_name)
        self._shared_step(state, host, "ehlo", reply)
        if not reply.is_positive:
            reply = await session.command(f"HELO {helo_name}")
            self._shared_step(state, host, "helo", reply)
            if not reply.is_positive:
                self._decide_all(targets, classify_session(reply), f"{host.name} refused HELO", state)
                return False
        if use_tls and "STARTTLS" in session.extensions:
            reply = await self._starttls(session)
            self._shared_step(state, host, "starttls", reply)
            if reply.is_positive:
                reply = await session.ehlo(helo_name)
                self._shared_step(state, host, "ehlo", reply)
                if not reply.is_positive:
                    self._decide_all(targets, classify_session(reply), f"{host.name} refused EHLO", state)
                    return False
        return True

    async def _probe_catch_all(
        self, session: SmtpSession, route: MailRoute, host: MailHost, state: _ProbeState
    ) -> None:
        """Ask for a mailbox that cannot exist: accepted means the domain accepts all mail."""
        probe_address = f"{self.probe_local_part(route.domain)}@{route.domain}"
        reply = await session.command(f"RCPT TO:<{probe_address}>")
        self._shared_step(state, host, "rcpt_probe", reply)
        outcome = classify_rcpt(reply)
        state.probe_outcome = outcome
        if outcome == Outcome.ACCEPTED:
            state.catch_all = True
        elif outcome in (Outcome.NOT_FOUND, Outcome.DISABLED):
            state.catch_all = False
        if state.catch_all is not None:
            self._remember_catch_all(route.domain, state.catch_all)
        if reply.code == 421:
            raise SmtpError("server is closing the session (421)")

    @staticmethod
    async def _ask_each(
        session: SmtpSession, host: MailHost, sendable: list[ParsedAddress], state: _ProbeState
    ) -> None:
        for target in sendable:
            line = f"RCPT TO:<{target.wire_address}>"
            try:
                check_wire_safe(line)
            except UnsafeCommand as exc:
                state.decide(target.key, Outcome.UNSAFE_ADDRESS, str(exc))
                continue
            reply = await session.command(line)
            state.steps.append((target.key, SmtpStep.of("rcpt", host.name, reply, state.attempt)))
            detail = f"{host.name}: {reply.code} {reply.text}"[:MAX_STEP_DETAIL_CHARS]
            state.decide(target.key, classify_rcpt(reply), detail)
            if reply.code == 421:
                raise SmtpError("server is closing the session (421)")

    async def _starttls(self, session: SmtpSession) -> Reply:
        try:
            return await session.starttls(verify_cert=self._config.starttls_verify_cert)
        except SmtpTimeout:
            raise
        except SmtpError as exc:
            raise _TlsFailed(str(exc)) from exc
