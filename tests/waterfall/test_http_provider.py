"""The HTTP provider adapter against a loopback Hunter-shaped server: mapping, retries honouring
Retry-After, giving up cleanly, the circuit breaker, the rate limiter, bad responses, timeouts."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from core.people.types import PersonInfo
from core.sources.circuit_breaker import CircuitOpen, CircuitState
from core.sources.http_provider import (
    HttpProviderSource,
    ProviderBadResponse,
    ProviderConfig,
    ProviderHttpError,
    ProviderRejected,
    parse_retry_after,
)
from core.sources.provider_settings import ProviderSettings
from storage.models.enums import EmailStatus, PhoneKind, PhoneStatus
from tests.waterfall.vendor_server import Reply, VendorServer, hunter_found, hunter_not_found


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def person(n: int = 1, first: str = "Jane", last: str = "Doe", domain: str = "acme.test") -> PersonInfo:
    return PersonInfo(n, f"{first} {last}", first, last, None, "Acme", domain, None, None, "GB")


@pytest.fixture
def vendor():
    with VendorServer() as server:
        yield server


def make(vendor: VendorServer, clock=None, sleeps=None, **overrides) -> HttpProviderSource:
    settings = dict(
        name="hunter",
        base_url=vendor.base_url,
        api_key="k-123",
        cost_per_hit_usd=Decimal("0.049"),
        rate_limit_per_s=1000,
        timeout_s=2.0,
        max_attempts=3,
        backoff_initial_s=0.5,
        backoff_max_s=4.0,
        circuit_failure_threshold=3,
        circuit_cooldown_s=30,
    )
    config = ProviderConfig(**{**settings, **overrides})
    kwargs = {}
    if clock is not None:
        kwargs["clock"] = clock
    # Recorded instead of slept: tests check the waits asked for, never how long anything took.
    kwargs["sleep"] = sleeps.append if sleeps is not None else (lambda s: None)
    return HttpProviderSource(config, **kwargs)


def test_found_email_is_a_vendor_claim_unverified_with_the_vendors_score(vendor) -> None:
    vendor.default = lambda p: hunter_found("jane.doe@acme.test", status="valid", score=93, phone="+44 7400 123456")
    source = make(vendor)
    found = source.find_email(person())
    assert (found.address, found.status, found.score, found.source) == (
        "jane.doe@acme.test",
        EmailStatus.UNVERIFIED,
        93,
        "hunter",
    )
    assert found.checked_at is None and not found.chargeable
    [seen] = vendor.seen
    assert seen.path == "/v2/email-finder"
    # The key rides in Hunter's header, never in the URL (proxy and access logs keep URLs).
    assert seen.params == {"domain": "acme.test", "first_name": "Jane", "last_name": "Doe"}
    assert seen.headers["X-API-KEY"] == "k-123"
    # The phone of the same answer, without a second request (one vendor call per lookup).
    [phone] = source.find_phones(person())
    assert (phone.e164, phone.kind, phone.status) == ("+447400123456", PhoneKind.MOBILE, PhoneStatus.VALID)
    assert vendor.calls == 1


@pytest.mark.parametrize(
    ("status", "accept_all", "expected"),
    [
        ("valid", False, EmailStatus.UNVERIFIED),
        ("unknown", False, EmailStatus.UNVERIFIED),
        (None, False, EmailStatus.UNVERIFIED),
        ("webmail", False, EmailStatus.UNVERIFIED),
        ("accept_all", False, EmailStatus.ACCEPT_ALL),
        (None, True, EmailStatus.ACCEPT_ALL),
        ("invalid", False, None),
        ("disposable", False, None),
    ],
)
def test_vendor_statuses_map_down_never_up(vendor, status, accept_all, expected) -> None:
    vendor.default = lambda p: hunter_found("jane.doe@acme.test", status=status, accept_all=accept_all)
    found = make(vendor).find_email(person())
    assert (found.status if found else None) == expected


def test_not_found_answers_are_not_failures(vendor) -> None:
    source = make(vendor)
    vendor.script.extend([hunter_not_found(), Reply(451, {"errors": []}), hunter_found("x@acme.test")])
    vendor.script[-1].body["data"]["email"] = None  # 200 with no email: Hunter's other "nothing"
    for n in range(3):
        assert source.find_email(person(n, first=f"P{n}")) is None
    assert source.breaker.state == CircuitState.CLOSED and vendor.calls == 3


def test_429_with_retry_after_is_waited_out_then_succeeds(vendor) -> None:
    sleeps: list[float] = []
    vendor.script.extend([Reply(429, {"errors": []}, {"Retry-After": "3"}), hunter_found("jane.doe@acme.test")])
    found = make(vendor, sleeps=sleeps).find_email(person())
    assert found is not None and found.address == "jane.doe@acme.test"
    assert sleeps == [3.0] and vendor.calls == 2


def test_retry_after_as_http_date_and_garbage() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_5xx_is_retried_with_backoff_then_gives_up_cleanly(vendor) -> None:
    sleeps: list[float] = []
    vendor.default = lambda p: Reply(503, b"upstream down")
    source = make(vendor, sleeps=sleeps)
    with pytest.raises(ProviderHttpError) as failure:
        source.find_email(person())
    assert failure.value.outcome == "http_5xx" and vendor.calls == 3
    assert len(sleeps) == 2 and all(0 <= s <= 4.0 for s in sleeps)
    # One failed call does not open the circuit; the vendor recovering is used at once.
    vendor.default = lambda p: hunter_found("jane.doe@acme.test")
    assert source.find_email(person()).address == "jane.doe@acme.test"


def test_a_retry_after_longer_than_we_wait_fails_at_once(vendor) -> None:
    sleeps: list[float] = []
    vendor.default = lambda p: Reply(429, {"errors": []}, {"Retry-After": "3600"})
    with pytest.raises(ProviderHttpError) as failure:
        make(vendor, sleeps=sleeps).find_email(person())
    assert failure.value.outcome == "http_429" and vendor.calls == 1 and sleeps == []


def test_auth_errors_are_not_retried(vendor) -> None:
    vendor.default = lambda p: Reply(401, {"errors": [{"id": "authentication_failed", "details": "bad key"}]})
    with pytest.raises(ProviderRejected, match="bad key"):
        make(vendor).find_email(person())
    assert vendor.calls == 1


@pytest.mark.parametrize(
    "body", [b"<html>gateway</html>", b'{"data": {"email": 42}}', b'{"result": []}', b'{"data": {"score": "high"}}']
)
def test_bad_json_or_shape_is_a_clean_failure_without_retries(vendor, body) -> None:
    vendor.default = lambda p: Reply(200, body)
    with pytest.raises(ProviderBadResponse) as failure:
        make(vendor).find_email(person())
    assert failure.value.outcome == "bad_response" and vendor.calls == 1


def test_slow_vendor_times_out_per_attempt(vendor) -> None:
    vendor.default = lambda p: Reply(200, hunter_found("a@acme.test").body, delay_s=1.5)
    with pytest.raises(ProviderHttpError) as failure:
        make(vendor, timeout_s=0.2, max_attempts=2).find_email(person())
    assert failure.value.outcome == "timeout" and vendor.calls == 2


def test_circuit_opens_after_consecutive_failures_then_half_opens_after_cooldown(vendor) -> None:
    clock = FakeClock()
    vendor.default = lambda p: Reply(500, b"")
    source = make(vendor, clock=clock, max_attempts=1)
    for n in range(3):
        with pytest.raises(ProviderHttpError):
            source.find_email(person(n, first=f"P{n}"))
    assert source.breaker.state == CircuitState.OPEN
    with pytest.raises(CircuitOpen):
        source.find_email(person(9, first="Q"))
    assert vendor.calls == 3  # open: the vendor is not even asked
    clock.now += 29
    with pytest.raises(CircuitOpen):
        source.find_email(person(9, first="Q"))
    clock.now += 2
    assert source.breaker.state == CircuitState.HALF_OPEN
    # The trial call fails: open again for a full cool-down.
    with pytest.raises(ProviderHttpError):
        source.find_email(person(9, first="Q"))
    assert source.breaker.state == CircuitState.OPEN and vendor.calls == 4
    clock.now += 31
    vendor.default = lambda p: hunter_found("r.s@acme.test")
    assert source.find_email(person(10, first="R", last="S")).address == "r.s@acme.test"
    assert source.breaker.state == CircuitState.CLOSED


def test_rate_limiter_bounds_requests_per_second_across_threads(vendor) -> None:
    vendor.default = lambda p: hunter_not_found()
    config = ProviderConfig(name="hunter", base_url=vendor.base_url, api_key="k", rate_limit_per_s=20, burst=2)
    source = HttpProviderSource(config)
    people = iter(range(40))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                n = next(people, None)
            if n is None:
                return
            source.find_email(person(n, first=f"P{n}"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    arrivals = sorted(s.at for s in vendor.seen)
    assert len(arrivals) == 40
    # Counting, not timing: no one-second window holds more than rate + burst requests.
    for i, start in enumerate(arrivals):
        in_window = sum(1 for t in arrivals[i:] if t < start + 1.0)
        assert in_window <= 20 + 2, f"{in_window} requests within one second from #{i}"


# ---- the transport: connections, redirects, proxies, failures without an answer


def test_sequential_calls_reuse_one_kept_alive_connection() -> None:
    with VendorServer(keep_alive=True) as vendor:
        vendor.default = lambda p: hunter_found(f"{p['first_name'].lower()}.doe@acme.test")
        source = make(vendor)
        for n in range(5):
            assert source.find_email(person(n, first=f"P{n}")).address == f"p{n}.doe@acme.test"
        vendor.script.append(Reply(503, b"busy"))  # an error reply does not cost the connection either
        assert source.find_email(person(9, first="Q")).address == "q.doe@acme.test"
    assert vendor.calls == 7 and source.attempts == 7
    assert len({s.client_port for s in vendor.seen}) == 1


def test_refused_connection_is_a_network_error_retried_then_given_up() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    config = ProviderConfig(name="hunter", base_url=f"http://127.0.0.1:{port}", api_key="k", max_attempts=3)
    source = HttpProviderSource(config, sleep=sleeps.append)
    with pytest.raises(ProviderHttpError) as failure:
        source.find_email(person())
    assert failure.value.outcome == "network_error" and source.attempts == 3 and len(sleeps) == 2


def test_redirects_are_followed_across_hosts_within_one_attempt(vendor) -> None:
    with VendorServer() as moved:
        moved.default = lambda p: hunter_found("jane.doe@acme.test")
        vendor.default = lambda p: Reply(301, b"", {"Location": moved.base_url + "/v2/email-finder?domain=acme.test"})
        source = make(vendor)
        assert source.find_email(person()).address == "jane.doe@acme.test"
    assert vendor.calls == 1 and moved.calls == 1 and source.attempts == 1
    assert moved.seen[0].params == {"domain": "acme.test"}


def test_a_4xx_without_json_reports_the_body_text(vendor) -> None:
    vendor.default = lambda p: Reply(403, b"blocked by the vendor's firewall")
    with pytest.raises(ProviderRejected, match="HTTP 403: blocked by the vendor's firewall"):
        make(vendor).find_email(person())
    assert vendor.calls == 1


def test_the_environments_proxy_is_used_unless_no_proxy_exempts_the_host(vendor, monkeypatch) -> None:
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    vendor.default = lambda p: hunter_found("jane.doe@acme.test")
    # The loopback vendor doubles as an HTTP proxy: it is asked in absolute form for a host that does
    # not resolve, so an answer proves the proxy was used.
    monkeypatch.setenv("HTTP_PROXY", vendor.base_url)
    # (*.localhost is loopback by RFC 6761, so plain http is allowed; nothing listens on its port 80.)
    via_proxy = make(vendor, base_url="http://vendor.localhost")
    assert via_proxy.find_email(person()).address == "jane.doe@acme.test"
    assert vendor.seen[0].path == "/v2/email-finder" and vendor.seen[0].headers["X-API-KEY"] == "k-123"
    # NO_PROXY: straight to the vendor even though the proxy named is not listening.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert make(vendor).find_email(person()).address == "jane.doe@acme.test"
    assert vendor.calls == 2


@pytest.mark.parametrize(
    "base_url",
    ["http://api.hunter.io", "http://10.0.0.5:8080", "ftp://api.hunter.io", "https://", "api.hunter.io"],
)
def test_plain_http_is_refused_except_to_loopback(base_url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        ProviderConfig(name="hunter", base_url=base_url, api_key="k")
    with pytest.raises(ValidationError, match="https://"):
        ProviderSettings(name="hunter", base_url=base_url, api_key="k")


@pytest.mark.parametrize("base_url", ["https://api.hunter.io", "http://127.0.0.1:9", "http://[::1]:9", "http://localhost"])
def test_https_or_loopback_base_urls_are_accepted(base_url: str) -> None:
    assert ProviderConfig(name="hunter", base_url=base_url, api_key="k").base_url == base_url
    assert ProviderSettings(name="hunter", base_url=base_url, api_key="k").base_url == base_url


def test_calls_and_429s_are_counted_for_prometheus(vendor) -> None:
    from core import metrics

    def value(counter, **labels) -> float:
        return counter.labels(**labels)._value.get()

    calls, limited = value(metrics.PROVIDER_CALLS, provider="hunter", status="429"), value(
        metrics.PROVIDER_429, provider="hunter"
    )
    vendor.script.extend([Reply(429, {"errors": []}, {"Retry-After": "3"}), hunter_found("jane.doe@acme.test")])
    assert make(vendor, sleeps=[]).find_email(person()) is not None
    assert value(metrics.PROVIDER_429, provider="hunter") == limited + 1
    assert value(metrics.PROVIDER_CALLS, provider="hunter", status="429") == calls + 1


def test_a_provider_burst_set_in_settings_reaches_its_rate_limiter() -> None:
    from core.sources.registry import provider_config

    base = {"name": "hunter", "base_url": "http://127.0.0.1:9", "api_key": "k", "rate_limit_per_s": 200}
    limited = HttpProviderSource(provider_config(ProviderSettings(**base, burst=5)))
    assert (limited.bucket.rate_per_s, limited.bucket.burst) == (200, 5)
    # Unset: one second's worth, as before the setting existed.
    assert HttpProviderSource(provider_config(ProviderSettings(**base))).bucket.burst == 200
    with pytest.raises(ValidationError, match="burst"):
        ProviderSettings(**base, burst=0)
