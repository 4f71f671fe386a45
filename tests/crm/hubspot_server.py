"""A loopback HubSpot speaking the CRM v3 contacts API the sync uses, with HubSpot's limits.

- POST /crm/v3/objects/contacts/search: filterGroups (OR of ANDed filters: EQ, NEQ, GT, GTE, LT,
  LTE, HAS_PROPERTY, NOT_HAS_PROPERTY), one sort, limit <= 200, `after` paging, no paging past 10,000
  results (400, as HubSpot).
- POST /crm/v3/objects/contacts/batch/read|update: at most 100 inputs (400 above); an update of a
  property that does not exist is a 400 (HubSpot: "Property values were not valid").
- GET|POST /crm/v3/properties/contacts: the properties; creating one that exists is a 409.
- Every request: 401 without the right Bearer token; 429 with Retry-After (whole seconds) when the
  token sent `rate_limit` requests in the last `window_s` seconds (HubSpot: 100 per 10 s per app).
- Last-modified times are unique and increasing epoch ms. `calls` records every request; a test edits
  a contact between syncs with `edit` (as a person in the CRM would: its last-modified moves).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STANDARD_PROPERTIES = (
    "firstname", "lastname", "email", "jobtitle", "company", "website", "phone", "mobilephone", "city",
    "country", "hs_linkedin_url", "lifecyclestage", "hs_lead_status", "hubspot_owner_id", "notes_last_contacted",
    "annualrevenue", "deal_amount", "createdate", "lastmodifieddate", "hs_object_id",
)  # fmt: skip
DEFAULT_SEARCH_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
MAX_BATCH = 100
MAX_SEARCH_LIMIT = 200
MAX_SEARCH_RESULTS = 10_000
_OPS = {
    "EQ": lambda a, b: a == b,
    "NEQ": lambda a, b: a != b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    inputs: int  # batch inputs, or search results returned


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class HubSpotServer:
    def __init__(self, token: str = "pat-test-token", *, rate_limit: int | None = None, window_s: float = 10.0) -> None:
        self.token = token
        self.rate_limit = rate_limit
        self.window_s = window_s
        self.contacts: dict[str, dict[str, str]] = {}
        self.modified: dict[str, int] = {}
        self.properties = set(STANDARD_PROPERTIES)
        self.calls: list[Call] = []
        self._sent: deque[float] = deque()
        self._lock = threading.RLock()
        self._last_ms = int(time.time() * 1000) - 86_400_000  # seeded contacts date from a day ago
        self._next_id = 1000
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> HubSpotServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    # ---- test helpers ---------------------------------------------------------------------------

    def _tick(self, at_ms: int | None = None) -> int:
        self._last_ms = max(self._last_ms + 1, at_ms or 0)
        return self._last_ms

    def add(self, **props: str) -> str:
        with self._lock:
            self._next_id += 1
            cid = str(self._next_id)
            self.contacts[cid] = {k: v for k, v in props.items() if v is not None}
            self.modified[cid] = self._tick()
            return cid

    def edit(self, cid: str, **props: str) -> None:
        """A person edits a contact in the CRM: its last-modified moves to now."""
        with self._lock:
            self.contacts[cid].update(props)
            self.modified[cid] = self._tick(int(time.time() * 1000))

    def stamp(self, ids: list[str], at_ms: int) -> None:
        """An import: many contacts get one last-modified millisecond (HubSpot's own ties)."""
        with self._lock:
            for cid in ids:
                self.modified[cid] = at_ms

    def count(self, path_end: str) -> int:
        return sum(1 for c in self.calls if c.path.endswith(path_end) and c.status == 200)

    # ---- the API --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, dict, dict[str, str]]:
        with self._lock:
            if auth != f"Bearer {self.token}":
                return 401, {"status": "error", "category": "INVALID_AUTHENTICATION", "message": "bad token"}, {}
            limited = self._rate_limited()
            if limited is not None:
                return limited
            route = {
                ("POST", "/crm/v3/objects/contacts/search"): self._search,
                ("POST", "/crm/v3/objects/contacts/batch/read"): self._batch_read,
                ("POST", "/crm/v3/objects/contacts/batch/update"): self._batch_update,
                ("GET", "/crm/v3/properties/contacts"): self._list_properties,
                ("POST", "/crm/v3/properties/contacts"): self._create_property,
            }.get((method, path))
            if route is None:
                return 404, {"status": "error", "message": f"no route {method} {path}"}, {}
            return (*route(body or {}), {})

    def _rate_limited(self) -> tuple[int, dict, dict[str, str]] | None:
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= self.window_s:
            self._sent.popleft()
        if len(self._sent) >= self.rate_limit:
            wait = max(1, math.ceil(self._sent[0] + self.window_s - now))
            body = {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
            }
            return 429, body, {"Retry-After": str(wait)}
        self._sent.append(now)
        return None

    def _object(self, cid: str, wanted: list[str]) -> dict:
        props = {p: self.contacts[cid].get(p) for p in wanted if p in self.properties}
        props["lastmodifieddate"] = iso(self.modified[cid])
        props["hs_object_id"] = cid
        return {
            "id": cid,
            "properties": props,
            "createdAt": iso(self.modified[cid]),
            "updatedAt": iso(self.modified[cid]),
            "archived": False,
        }

    def _value(self, cid: str, name: str) -> Any:
        if name == "lastmodifieddate":
            return self.modified[cid]
        if name == "hs_object_id":
            return int(cid)
        return self.contacts[cid].get(name)

    def _matches(self, cid: str, groups: list[dict]) -> bool:
        if not groups:
            return True
        for group in groups:
            ok = True
            for f in group.get("filters", []):
                value, op = self._value(cid, f["propertyName"]), f["operator"]
                if op == "HAS_PROPERTY":
                    ok = ok and value not in (None, "")
                elif op == "NOT_HAS_PROPERTY":
                    ok = ok and value in (None, "")
                else:
                    wanted = f.get("value")
                    if isinstance(value, int):
                        wanted = int(wanted)
                    ok = ok and value is not None and _OPS[op](value, wanted)
            if ok:
                return True
        return False

    def _search(self, body: dict) -> tuple[int, dict]:
        limit, after = int(body.get("limit", 10)), int(body.get("after") or 0)
        if limit > MAX_SEARCH_LIMIT:
            return 400, {"status": "error", "message": f"limit {limit} exceeds {MAX_SEARCH_LIMIT}"}
        if after + limit > MAX_SEARCH_RESULTS:
            return 400, {"status": "error", "message": "paging past 10,000 results is not supported"}
        hits = [cid for cid in self.contacts if self._matches(cid, body.get("filterGroups", []))]
        for sort in body.get("sorts", [])[:1]:
            hits.sort(key=lambda c: (self._value(c, sort["propertyName"]) or 0, int(c)),
                      reverse=sort.get("direction") == "DESCENDING")  # fmt: skip
        wanted = list(body.get("properties") or DEFAULT_SEARCH_PROPERTIES)
        page = hits[after : after + limit]
        payload: dict[str, Any] = {"total": len(hits), "results": [self._object(c, wanted) for c in page]}
        if after + limit < len(hits):
            payload["paging"] = {"next": {"after": str(after + limit), "link": "?after=" + str(after + limit)}}
        self.calls.append(Call("POST", "/crm/v3/objects/contacts/search", 200, len(page)))
        return 200, payload

    def _batch_read(self, body: dict) -> tuple[int, dict]:
        inputs = body.get("inputs", [])
        if len(inputs) > MAX_BATCH:
            return 400, {"status": "error", "message": f"batch of {len(inputs)} exceeds {MAX_BATCH}"}
        wanted = list(body.get("properties") or [])
        found = [self._object(i["id"], wanted) for i in inputs if i["id"] in self.contacts]
        self.calls.append(Call("POST", "/crm/v3/objects/contacts/batch/read", 200, len(inputs)))
        return 200, {"status": "COMPLETE", "results": found}

    def _batch_update(self, body: dict) -> tuple[int, dict]:
        inputs = body.get("inputs", [])
        if len(inputs) > MAX_BATCH:
            return 400, {"status": "error", "message": f"batch of {len(inputs)} exceeds {MAX_BATCH}"}
        for item in inputs:
            unknown = set(item.get("properties", {})) - self.properties
            if unknown or item["id"] not in self.contacts:
                return 400, {"status": "error", "message": f"Property values were not valid: {sorted(unknown)}"}
        out = []
        for item in inputs:
            self.contacts[item["id"]].update(item["properties"])
            self.modified[item["id"]] = self._tick(int(time.time() * 1000))
            out.append(self._object(item["id"], list(item["properties"])))
        self.calls.append(Call("POST", "/crm/v3/objects/contacts/batch/update", 200, len(inputs)))
        return 200, {"status": "COMPLETE", "results": out}

    def _list_properties(self, body: dict) -> tuple[int, dict]:
        self.calls.append(Call("GET", "/crm/v3/properties/contacts", 200, 0))
        return 200, {"results": [{"name": p, "label": p, "type": "string"} for p in sorted(self.properties)]}

    def _create_property(self, body: dict) -> tuple[int, dict]:
        name = body.get("name", "")
        if name in self.properties:
            return 409, {"status": "error", "message": f"property {name} already exists"}
        self.properties.add(name)
        self.calls.append(Call("POST", "/crm/v3/properties/contacts", 200, 1))
        return 200, {"name": name, "label": body.get("label", name), "type": body.get("type", "string")}


def _handler(server: HubSpotServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            path = self.path.split("?", 1)[0]
            status, payload, headers = server.handle(method, path, self.headers.get("Authorization"), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self._serve("POST")

    return Handler
