"""HubSpot's CRM v3 contacts API as a CrmConnector (a private app's token as Bearer).

    POST /crm/v3/objects/contacts/search        filterGroups on lastmodifieddate (GTE cursor, epoch ms
                                                as text), sorts ASCENDING, limit <= 200; each page a
                                                new search from the newest last-modified seen (keyset:
                                                HubSpot's `after` offsets shift as contacts change,
                                                and stop at 10,000 results); more than a page
                                                at one millisecond is walked by hs_object_id
    POST /crm/v3/objects/contacts/batch/read    {"properties": [...], "inputs": [{"id": ...}]}   (<= 100)
    POST /crm/v3/objects/contacts/batch/update  {"inputs": [{"id": ..., "properties": {...}}]}  (<= 100)
    GET  /crm/v3/properties/contacts            the contact properties that exist
    POST /crm/v3/properties/contacts            create one (name, label, type, fieldType, groupName)

Rate limits: HubSpot allows an app 100 requests per 10 s (more on higher tiers). The client paces
itself with a sliding window of that size (TRIBUTARY_HUBSPOT_REQUESTS_PER_10S), and a 429 that still
comes (another app on the same account) is retried by tenacity after its Retry-After. A 401 is a
CrmAuthError at once: a revoked token does not get better by retrying.

Transport: urllib3 with one keep-alive pool, as core/sources/http_provider.py (and its rule: https,
or plain http only to loopback, so a token never crosses a network in clear).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import urllib3
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from core.crm.connector import ContactUpdate, CrmAuthError, CrmContact, CrmError, CrmPage, PropertySpec
from core.errors import InvalidInput
from core.sources.http_provider import base_url_problem, parse_retry_after

DEFAULT_API_URL = "https://api.hubapi.com"
BATCH_LIMIT = 100  # HubSpot's batch read/update limit
SEARCH_PAGE_LIMIT = 200  # HubSpot's largest search page
REQUESTS_PER_WINDOW = 100
WINDOW_S = 10.0
MODIFIED = "lastmodifieddate"
OBJECT_ID = "hs_object_id"  # the contact's numeric id, as a searchable property
PROPERTY_GROUP = "contactinformation"
MAX_ERROR_CHARS = 300


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SlidingWindow:
    """At most `limit` calls in any `window_s` seconds: a caller waits for the oldest to age out."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise InvalidInput("rate window: limit and window_s must be positive")
        self.limit, self.window_s = limit, window_s
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.window_s:
                self._sent.popleft()
            wait_s = self._sent[0] + self.window_s - now if len(self._sent) >= self.limit else 0.0
            self._sent.append(now + wait_s)
            if len(self._sent) > self.limit:
                self._sent.popleft()
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s


def modified_ms(value: str) -> int:
    """HubSpot's timestamps ("2019-10-30T03:30:17.883Z") as epoch milliseconds."""
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except (AttributeError, ValueError):
        raise CrmError(f"HubSpot: updatedAt {str(value)[:40]!r} is not a timestamp") from None


class HubSpotContacts:
    batch_limit = BATCH_LIMIT

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        requests_per_10s: int = REQUESTS_PER_WINDOW,
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        max_retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        problem = base_url_problem(base_url)
        if problem:
            raise InvalidInput(f"TRIBUTARY_HUBSPOT_API_URL {problem}")
        if not token:
            raise InvalidInput("HubSpot token: empty")
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=4)
        self._timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
        self._window = SlidingWindow(requests_per_10s, WINDOW_S, clock=clock, sleep=sleep)
        self._sleep = sleep
        self.max_attempts = max_attempts
        self.max_retry_after_s = max_retry_after_s
        self._calls = 0

    @property
    def calls(self) -> int:
        return self._calls

    # ---- the API --------------------------------------------------------------------------------

    def changed_since(
        self, cursor_ms: int, properties: Sequence[str], *, page_size: int = SEARCH_PAGE_LIMIT
    ) -> Iterator[CrmPage]:
        """Keyset paging: every page is a new search from the newest last-modified seen so far, never
        an `after` offset. Offsets shift while contacts change under the walk (the sync's own writes
        move them to the end), which would skip contacts; and HubSpot pages no further than 10,000."""
        size = max(1, min(page_size, SEARCH_PAGE_LIMIT))
        wanted = sorted({*properties, MODIFIED})
        start, at_start = cursor_ms, set[str]()  # ids already yielded whose last-modified is `start`
        while True:
            results, total = self._search([(MODIFIED, "GTE", start)], MODIFIED, wanted, size)
            page = [c for c in results if not (c.modified_ms == start and c.id in at_start)]
            if page:
                yield CrmPage(page, max(0, total - len(results)))
            if len(results) < size:
                return
            if not page:
                # A full page of contacts at `start`, all yielded already: more than a page share that
                # millisecond (an import stamps thousands alike). Walk it by id, then go on after it.
                yield from self._same_millisecond(start, wanted, size, at_start)
                start, at_start = start + 1, set()
                continue
            newest = page[-1].modified_ms
            at_start = {c.id for c in page if c.modified_ms == newest} | (at_start if newest == start else set())
            start = newest

    def _same_millisecond(self, at_ms: int, wanted: list[str], size: int, seen: set[str]) -> Iterator[CrmPage]:
        """Every contact last modified at `at_ms` not in `seen`, by id (keyset on hs_object_id). One
        changed meanwhile has left this millisecond: the walk after it finds it."""
        after_id = 0
        while True:
            tie = [(MODIFIED, "EQ", at_ms), (OBJECT_ID, "GT", after_id)]
            results, total = self._search(tie, OBJECT_ID, wanted, size)
            page = [c for c in results if c.id not in seen]
            if page:
                yield CrmPage(page, max(0, total - len(results)))
            if len(results) < size:
                return
            after_id = _int(results[-1].id, "id")

    def _search(
        self, filters: list[tuple[str, str, int]], sort_by: str, wanted: list[str], size: int
    ) -> tuple[list[CrmContact], int]:
        """One search page (filters ANDed, ascending by `sort_by`, from the first result) and HubSpot's total."""
        anded = [{"propertyName": p, "operator": op, "value": str(v)} for p, op, v in filters]
        body = {
            "filterGroups": [{"filters": anded}],
            "sorts": [{"propertyName": sort_by, "direction": "ASCENDING"}],
            "properties": wanted,
            "limit": size,
            "after": "0",
        }
        payload = self._call("POST", "/crm/v3/objects/contacts/search", body)
        return [_contact(item) for item in _results(payload)], _int(payload.get("total", 0), "total")

    def read(self, ids: Sequence[str], properties: Sequence[str]) -> list[CrmContact]:
        _check_batch(ids)
        if not ids:
            return []
        body = {"properties": sorted({*properties, MODIFIED}), "inputs": [{"id": i} for i in ids]}
        return [_contact(item) for item in _results(self._call("POST", "/crm/v3/objects/contacts/batch/read", body))]

    def update(self, updates: Sequence[ContactUpdate]) -> list[CrmContact]:
        _check_batch(updates)
        if not updates:
            return []
        body = {"inputs": [{"id": u.id, "properties": dict(u.properties)} for u in updates]}
        payload = self._call("POST", "/crm/v3/objects/contacts/batch/update", body)
        return [_contact(item) for item in _results(payload)]

    def ensure_properties(self, specs: Sequence[PropertySpec]) -> list[str]:
        if not specs:
            return []
        existing = {item.get("name") for item in _results(self._call("GET", "/crm/v3/properties/contacts", None))}
        created = []
        for spec in specs:
            if spec.name in existing:
                continue
            body = {
                "name": spec.name,
                "label": spec.label,
                "type": "string",
                "fieldType": "text",
                "groupName": PROPERTY_GROUP,
            }
            self._call("POST", "/crm/v3/properties/contacts", body)
            created.append(spec.name)
        return created

    # ---- one call, paced and retried ------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, body)
        except _Retryable as exc:
            raise CrmError(f"HubSpot: {exc} (gave up after {self.max_attempts} attempts)") from None

    def _wait(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.max_retry_after_s)
        return wait_random_exponential(multiplier=0.5, max=8.0)(retry_state)

    def _attempt(self, method: str, path: str, body: dict | None) -> dict[str, Any]:
        self._window.acquire()
        self._calls += 1
        try:
            response = self._pool.request(
                method,
                self.base_url + path,
                body=json.dumps(body).encode() if body is not None else None,
                headers=self._headers,
                timeout=self._timeout,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retryable(f"{method} {path}: {type(exc).__name__}", None) from None
        code = response.status
        if code == 401:
            raise CrmAuthError("HubSpot refused the token (HTTP 401): reconnect with `tributary crm connect`")
        if code == 429 or code >= 500:
            raise _Retryable(f"{method} {path}: HTTP {code}", parse_retry_after(response.headers.get("Retry-After")))
        if code >= 400:
            raise CrmError(f"HubSpot: {method} {path}: HTTP {code}: {_message(response.data)}")
        try:
            payload = json.loads(response.data or b"{}")
        except ValueError:
            raise CrmError(f"HubSpot: {method} {path}: the response is not JSON") from None
        if not isinstance(payload, dict):
            raise CrmError(f"HubSpot: {method} {path}: the response is not a JSON object")
        return payload


def _check_batch(items: Sequence[object]) -> None:
    if len(items) > BATCH_LIMIT:
        raise InvalidInput(f"HubSpot batch: {len(items)} contacts; at most {BATCH_LIMIT} per call")


def _results(payload: dict[str, Any]) -> list[dict[str, Any]]:
    results = payload.get("results")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise CrmError("HubSpot: the response has no 'results' list")
    return results


def _contact(item: dict[str, Any]) -> CrmContact:
    props = item.get("properties") or {}
    if not isinstance(props, dict) or "id" not in item:
        raise CrmError("HubSpot: a contact without 'id' or 'properties'")
    stamp = item.get("updatedAt") or props.get(MODIFIED)
    values = {str(k): "" if v is None else str(v) for k, v in props.items()}
    return CrmContact(str(item["id"]), modified_ms(str(stamp)), values)


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CrmError(f"HubSpot: {what} {str(value)[:40]!r} is not a number") from None


def _message(data: bytes) -> str:
    try:
        message = json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return " ".join(str(message).split())[:MAX_ERROR_CHARS] or "no message"
