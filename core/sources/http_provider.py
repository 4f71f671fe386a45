"""An external data vendor over HTTP, configured by base URL and API key.

The response shape is Hunter's Email Finder v2:

    GET {base}/v2/email-finder?domain=..&first_name=..&last_name=..   (header X-API-KEY: <key>)
    200 {"data": {"email": "a.b@x.com" | null, "score": 0-100, "accept_all": bool,
                  "verification": {"date": "...", "status": "valid"|"accept_all"|"unknown"|... | null},
                  "phone_number": str | null, ...}, "meta": {...}}
    404 / 451, or 200 with "email": null  -> nothing found (451: the person asked to be left out)

The API key travels in Hunter's `X-API-KEY` header, never in the URL (URLs end up in proxy and
access logs), and a base URL must be https:// unless it points at this machine (loopback).

Vendor statuses are the vendor's claims, so they map down, never up:
    valid, unknown, webmail, null -> unverified  (not chargeable, score = the vendor's)
    accept_all (or data.accept_all) -> accept_all
    invalid, disposable           -> nothing found
Only our own verifier makes an email `verified`: the waterfall's validation step does that.

Resilience, outermost first: a circuit breaker (fail fast after repeated failed calls), tenacity
retries with backoff on 429/5xx/timeouts honouring Retry-After (seconds or HTTP date), and a token
bucket per source in front of every attempt. A Retry-After longer than `max_retry_after_s` is not
waited out: the call fails at once so a user's request is not held for minutes.

Transport: a vendor reached directly is called on http.client with kept-alive connections shared by
the source's callers (core/sources/keepalive.py); through a proxy or a caller's pool, and to follow
redirects, urllib3. Through `requests` a call to a loopback vendor cost ~2.4x urllib3's CPU (most of
it re-reading proxy settings from the environment and preparing the request, on every call), and
urllib3's ~1.6x http.client's, so what requests did for us by default (HTTP(S)_PROXY and NO_PROXY,
its CA bundle, following redirects) is resolved once when the source is built.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import certifi
import urllib3
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from core import metrics
from core.errors import InvalidInput
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from core.sources.base import SourceError
from core.sources.circuit_breaker import CircuitBreaker
from core.sources.keepalive import KeepAliveHost, Reply
from core.sources.rate_limit import TokenBucket
from core.verify.phone import verify_phone
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus

log = logging.getLogger(__name__)

_VENDOR_STATUS = {
    "valid": EmailStatus.UNVERIFIED,
    "unknown": EmailStatus.UNVERIFIED,
    "webmail": EmailStatus.UNVERIFIED,
    "accept_all": EmailStatus.ACCEPT_ALL,
    "invalid": EmailStatus.INVALID,
    "disposable": EmailStatus.INVALID,
}
_NOT_FOUND_HTTP = frozenset({404, 451})
USER_AGENT = "tributary (contact-data enrichment)"
API_KEY_HEADER = "X-API-KEY"  # Hunter's header for the key (the query-string api_key works too, but leaks)
# urllib3 never retries a failure (tenacity does, with the breaker and the bucket in the loop): connect
# and read errors are re-raised as they are, any other error after one try (wrapped in MaxRetryError).
# Redirects are still followed, as requests did (30 at most, then an error).
_FOLLOW_REDIRECTS_ONLY = urllib3.Retry(
    total=None, connect=False, read=False, other=0, redirect=30, status=None, respect_retry_after_header=False
)


class ProviderHttpError(SourceError):
    """A vendor answer that retrying may fix (429, 5xx) or a transport failure (timeout, refused)."""

    def __init__(self, message: str, *, outcome: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retry_after_s = retry_after_s


class ProviderRejected(SourceError):
    """The vendor refused the request itself (401/403/400...): retrying cannot help."""

    outcome = "rejected_by_vendor"


class ProviderBadResponse(SourceError):
    outcome = "bad_response"


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    api_key: str
    cost_per_hit_usd: Decimal = Decimal("0")
    rate_limit_per_s: float = 10.0
    burst: int | None = None
    timeout_s: float = 10.0  # per HTTP attempt (connect and read each)
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0
    circuit_failure_threshold: int = 5
    circuit_cooldown_s: float = 60.0
    memo_ttl_s: float = 120.0  # find_phones and find_email of one lookup share one vendor call
    max_connections: int = 64  # kept-alive connections: one per concurrent caller (a job's workers)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"provider name {self.name!r}: letters, digits, '-' and '_' only")
        problem = base_url_problem(self.base_url)
        if problem:
            raise ValueError(f"provider {self.name}: base_url {problem}")
        if self.timeout_s <= 0 or self.max_attempts < 1 or self.rate_limit_per_s <= 0:
            raise ValueError(f"provider {self.name}: timeout_s, max_attempts and rate_limit_per_s must be positive")


@dataclass(frozen=True)
class VendorAnswer:
    """The fields we use from one email-finder response; email None = nothing found."""

    email: str | None
    vendor_status: str | None
    accept_all: bool
    score: int
    phone_number: str | None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is delay-seconds or an HTTP-date (RFC 9110 10.2.3); anything else is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_email_finder(payload: Any) -> VendorAnswer:
    """Checks the shape strictly: a vendor that changes its format must fail loudly, not silently."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise ProviderBadResponse("response has no 'data' object")
    data = payload["data"]
    email = data.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 320):
        raise ProviderBadResponse(f"'data.email' is not an email address: {str(email)[:80]!r}")
    score = data.get("score")
    if score is None:
        score = 0
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 100:
        raise ProviderBadResponse(f"'data.score' must be a number 0-100, got {str(score)[:40]!r}")
    verification = data.get("verification") or {}
    if not isinstance(verification, dict):
        raise ProviderBadResponse("'data.verification' is not an object")
    status = verification.get("status")
    if status is not None and not isinstance(status, str):
        raise ProviderBadResponse("'data.verification.status' is not a string")
    phone = data.get("phone_number")
    if phone is not None and not isinstance(phone, str):
        raise ProviderBadResponse("'data.phone_number' is not a string")
    return VendorAnswer(
        email=email.strip().lower() if email else None,
        vendor_status=status,
        accept_all=data.get("accept_all") is True,
        score=int(score),
        phone_number=phone or None,
    )


@dataclass(slots=True)
class _Memo:
    """One vendor call's answer, kept for the other half of the lookup."""

    at: float  # clock() when it was answered
    answer: VendorAnswer | None
    costed: bool = False  # a hit from it has logged its price (hit_cost_usd)


@dataclass(frozen=True)
class _AttemptNumber:
    """What tenacity's wait strategies read of a retry state."""

    attempt_number: int


class HttpProviderSource:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        pool: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.name = config.name
        self.cost_per_hit_usd = config.cost_per_hit_usd
        self.rate_limit_per_s: float | None = config.rate_limit_per_s
        self.timeout_s = config.timeout_s
        # A caller's pool (own CA, proxy) is used as given; timeout, retries and headers are still ours per call.
        self.pool = pool if pool is not None else _default_pool(config)
        self._url = config.base_url.rstrip("/") + "/v2/email-finder"
        # Without a proxy or a pool of the caller's, straight to the vendor host on http.client
        # (core/sources/keepalive.py: ~0.6x urllib3's CPU per call). Redirects, which may lead to
        # another host, are still followed by the pool manager.
        direct = pool is None and type(self.pool) is urllib3.PoolManager
        self._direct = KeepAliveHost(
            self._url, timeout_s=config.timeout_s, max_idle=config.max_connections, ca_bundle=_ca_bundle()
        ) if direct else None
        self._host_pool = (
            self.pool.connection_from_url(self._url)
            if self._direct is None and type(self.pool) is urllib3.PoolManager else None
        )
        self._path = urlsplit(self._url).path
        self._timeout = urllib3.Timeout(connect=config.timeout_s, read=config.timeout_s)
        # Both transports name us (urllib3 would say python-urllib3; http.client says nothing, and some
        # vendors' firewalls refuse a request without a User-Agent).
        self._direct_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, API_KEY_HEADER: config.api_key}
        self._headers = {**self._direct_headers, **urllib3.util.make_headers(accept_encoding=True)}
        self.bucket = TokenBucket(config.rate_limit_per_s, burst=config.burst, clock=clock, sleep=sleep)
        self.breaker = CircuitBreaker(
            config.name,
            failure_threshold=config.circuit_failure_threshold,
            cooldown_s=config.circuit_cooldown_s,
            clock=clock,
        )
        self._clock = clock
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=config.backoff_initial_s, max=config.backoff_max_s)
        self._memo: OrderedDict[tuple[str, str, str], _Memo] = OrderedDict()
        self._memo_lock = threading.Lock()
        self.attempts = 0  # HTTP requests sent, for tests and benchmarks

    # ---- ContactSource

    def find_email(self, person: PersonInfo) -> EmailFinding | None:
        answer = self.lookup(person)
        if answer is None or answer.email is None:
            return None
        status = _VENDOR_STATUS.get(answer.vendor_status or "", EmailStatus.UNVERIFIED)
        if answer.accept_all and status == EmailStatus.UNVERIFIED:
            status = EmailStatus.ACCEPT_ALL
        if status == EmailStatus.INVALID:
            return None
        # checked_at None: nobody we trust has checked it (the validation step will, if enabled).
        return EmailFinding(answer.email, status, answer.score, None, self.name)

    def find_phones(self, person: PersonInfo) -> list[PhoneFinding]:
        answer = self.lookup(person)
        if answer is None or answer.phone_number is None:
            return []
        try:
            result = verify_phone(answer.phone_number, _region(person.country_code))
        except InvalidInput:  # the company's country code is not one libphonenumber knows
            result = verify_phone(answer.phone_number)
        if result.e164 is None or result.kind is None:
            return []  # not a usable number: nothing found
        line_type = str(result.line_type) if result.line_type is not None else None
        kind = result.kind if result.kind in (PhoneKind.MOBILE, PhoneKind.OFFICE) else PhoneKind.OFFICE
        return [PhoneFinding(result.e164, kind, PhoneStatus(result.status), line_type, self.name)]

    # ---- the vendor call

    def lookup(self, person: PersonInfo) -> VendorAnswer | None:
        """The vendor's answer for this person (None when the person cannot be asked about: no name
        or no domain). Raises SourceError when the vendor could not answer."""
        key = _memo_key(person)
        if key is None:
            return None
        first, last = _split_name(person)
        cached = self._memo_get(key)
        if cached is not None:
            return cached.answer
        self.breaker.before_call()
        try:
            answer = self._call_with_retries({"domain": key[0], "first_name": first, "last_name": last})
        except Exception:  # SourceError or a bug: either way the vendor call did not work
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        self._memo_put(key, answer)
        return answer

    def _call_with_retries(self, params: dict[str, str]) -> VendorAnswer | None:
        try:
            return self._attempt(params)  # most calls answer at once: no retry machinery built for them
        except ProviderHttpError as exc:
            if self.config.max_attempts < 2 or not self._retryable(exc):
                raise
            self._sleep(self._delay(exc, attempt=1))
        retrying = Retrying(  # the attempts after the first
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self.config.max_attempts - 1),
            wait=lambda state: self._delay(state.outcome.exception(), attempt=state.attempt_number + 1),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._attempt, params)

    def _retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, ProviderHttpError):
            return False
        return exc.retry_after_s is None or exc.retry_after_s <= self.config.max_retry_after_s

    def _delay(self, exc: BaseException | None, *, attempt: int) -> float:
        """The wait after failed attempt number `attempt`: the vendor's Retry-After, else exponential
        backoff with full jitter (tenacity's wait_random_exponential)."""
        if isinstance(exc, ProviderHttpError) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return self._backoff(_AttemptNumber(attempt))

    def _attempt(self, params: dict[str, str]) -> VendorAnswer | None:
        self.bucket.acquire(max_wait_s=self.config.timeout_s)
        self.attempts += 1
        try:
            response = self._get("?" + urlencode(params))
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise _transport_error(self.name, self.config.timeout_s, exc) from exc
        code = response.status
        metrics.PROVIDER_CALLS.labels(provider=self.name, status=str(code)).inc()
        if code == 429:
            metrics.PROVIDER_429.labels(provider=self.name).inc()
        if code in _NOT_FOUND_HTTP:
            return None
        if code == 429 or code >= 500:
            raise ProviderHttpError(
                f"{self.name}: HTTP {code}",
                outcome="http_429" if code == 429 else "http_5xx",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        if code != 200:
            raise ProviderRejected(f"{self.name}: HTTP {code}: {_vendor_error(response.data)}")
        try:
            payload = json.loads(response.data)
        except ValueError as exc:  # JSONDecodeError, or bytes in no UTF encoding (UnicodeDecodeError)
            raise ProviderBadResponse(f"{self.name}: response is not JSON") from exc
        try:
            answer = parse_email_finder(payload)
        except ProviderBadResponse as exc:
            raise ProviderBadResponse(f"{self.name}: {exc}") from exc
        return answer

    def _get(self, query: str) -> urllib3.BaseHTTPResponse | Reply:
        """One GET of the email finder (read whole: the connection goes back to the pool at once)."""
        if self._direct is not None:
            reply = self._direct.get(self._path + query, self._direct_headers)
            location = reply.get_redirect_location()
            if not location:
                return reply
            url = urljoin(self._url, location)  # followed from here by the manager, to any host
        elif self._host_pool is not None:
            response = self._host_pool.urlopen(
                "GET",
                self._path + query,
                headers=self._headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
            location = response.get_redirect_location()
            if not location:
                return response
            url = urljoin(self._url, location)  # followed from here by the manager, to any host
        else:
            url = self._url + query
        return self.pool.urlopen(
            "GET",
            url,
            headers=self._headers,
            timeout=self._timeout,
            retries=_FOLLOW_REDIRECTS_ONLY,
            redirect=True,
            preload_content=True,
        )

    def hit_cost_usd(self, person: PersonInfo) -> Decimal:
        """What the hit just reported for `person` cost us: the price once per vendor call, nothing
        for the other half (email or phones) served from that call's memo."""
        key = _memo_key(person)
        with self._memo_lock:
            memo = self._memo.get(key) if key is not None else None
            if memo is not None:
                if memo.costed:
                    return Decimal(0)
                memo.costed = True
        return self.cost_per_hit_usd

    # ---- memo: one vendor call serves both halves of a data request

    def _memo_get(self, key: tuple[str, str, str]) -> _Memo | None:
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is None:
                return None
            if self._clock() - hit.at > self.config.memo_ttl_s:
                del self._memo[key]
                return None
            return hit

    def _memo_put(self, key: tuple[str, str, str], answer: VendorAnswer | None) -> None:
        with self._memo_lock:
            self._memo[key] = _Memo(self._clock(), answer)  # a new call: its first hit costs again
            self._memo.move_to_end(key)
            while len(self._memo) > 1024:
                self._memo.popitem(last=False)


def _transport_error(name: str, timeout_s: float, exc: BaseException) -> ProviderHttpError:
    """No answer from the vendor: a timeout (connect or read) or any other transport failure."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # a failure urllib3 did not re-raise as it was (TLS, proxy, too many redirects)
    # NewConnectionError (refused, DNS) subclasses ConnectTimeoutError but is not a timeout.
    timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    )
    if timed_out:
        return ProviderHttpError(f"{name}: timed out after {timeout_s}s", outcome="timeout")
    return ProviderHttpError(f"{name}: {type(exc).__name__}", outcome="network_error")


def _ca_bundle() -> str:
    """The CA bundle (file or directory) requests would use: its environment variables, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


def _default_pool(config: ProviderConfig) -> urllib3.PoolManager:
    """Keep-alive connections, one per concurrent caller (block=False: a caller beyond max_connections
    gets a connection of its own that is closed after use rather than waiting). Proxy and CA bundle as
    requests chose them from the environment, looked up once here rather than on every request."""
    tls: dict[str, str] = {}
    ca_bundle = _ca_bundle()
    tls["ca_cert_dir" if os.path.isdir(ca_bundle) else "ca_certs"] = ca_bundle
    pool_kw: dict[str, Any] = {"maxsize": max(1, config.max_connections), "block": False, **tls}
    proxy_url = _environment_proxy(config.base_url)
    if proxy_url is None:
        return urllib3.PoolManager(num_pools=4, **pool_kw)
    if proxy_url.lower().startswith("socks"):
        from urllib3.contrib.socks import SOCKSProxyManager  # needs PySocks, as requests did for socks

        return SOCKSProxyManager(proxy_url, num_pools=4, **pool_kw)
    return urllib3.ProxyManager(proxy_url, num_pools=4, **pool_kw)


def base_url_problem(base_url: str) -> str | None:
    """Why a vendor base URL is refused: not http(s), or plain http to anywhere but loopback."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an https:// URL"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "must use https:// (plain http:// would send the API key in clear; allowed only to loopback)"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _environment_proxy(base_url: str) -> str | None:
    """The proxy that HTTP_PROXY / HTTPS_PROXY / ALL_PROXY name for this URL, unless NO_PROXY exempts its host."""
    proxies = urllib.request.getproxies()
    parts = urlsplit(base_url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _memo_key(person: PersonInfo) -> tuple[str, str, str] | None:
    """Who the vendor is asked about (None: no name or no domain, so it is not asked)."""
    if not person.domain or not (person.first_name or person.full_name):
        return None
    first, last = _split_name(person)
    return person.domain.lower(), first.lower(), last.lower()


def _split_name(person: PersonInfo) -> tuple[str, str]:
    if person.first_name and person.last_name:
        return person.first_name, person.last_name
    parts = person.full_name.split()
    first = person.first_name or (parts[0] if parts else "")
    last = person.last_name or (parts[-1] if len(parts) > 1 else "")
    return first, last


def _region(country_code: str | None) -> str | None:
    return country_code.upper() if country_code and len(country_code) == 2 else None


def _vendor_error(body: bytes) -> str:
    """Hunter's errors: {"errors": [{"id": ..., "code": ..., "details": "..."}]}."""
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(str(e.get("details") or e.get("id")) for e in errors if isinstance(e, dict))[:200] or "-"
    except (ValueError, AttributeError, TypeError):
        return body[:800].decode("utf-8", "replace")[:200] or "-"
