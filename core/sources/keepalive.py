"""Kept-alive HTTP(S) connections to one vendor host, shared by the threads that call it, on the
standard library's http.client: the transport of a provider reached directly (no proxy, no pool of
the caller's).

Why not urllib3's pool for these: a vendor call through it cost ~1.6x the CPU of the same exchange
here (its pool, retry and timeout objects, URL re-encoding and response wrapper, on every call:
~230 against ~140 us; BENCHMARKS.md), and an enrichment makes three such calls per person. urllib3
still carries what needs it: proxies, a caller's pool, and redirects (which may lead to another host).

Same guarantees as urllib3 gave: TLS verified against the CA bundle (hostname checked, SNI), the
timeout on connect and on every read, connections reused across threads (a TLS handshake per
connection, not per call), and a kept-alive connection the vendor closed while idle noticed before
it is reused (a readable idle socket: EOF or junk), so an idle hang-up costs no failed call. Nothing
is retried here: a failure goes to the caller, whose retry policy decides. No Accept-Encoding:
answers come as they are (small JSON).
"""

from __future__ import annotations

import http.client
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from urllib3.util.wait import wait_for_read

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    data: bytes

    def get_redirect_location(self) -> str | None:
        return self.headers.get("Location") if self.status in REDIRECT_STATUSES else None


class KeepAliveHost:
    """GETs to one scheme://host:port; a connection serves one call at a time, then waits idle for
    the next caller (at most `max_idle` wait; more are closed after use)."""

    def __init__(self, base_url: str, *, timeout_s: float, max_idle: int, ca_bundle: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        # A bare IPv6 address without a port would be split at its last colon: name the port.
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout_s = timeout_s
        self.max_idle = max(1, max_idle)
        self._https = parts.scheme == "https"
        self._ca_bundle = ca_bundle
        self._tls: ssl.SSLContext | None = None  # built at the first connection: a bad bundle fails a call
        self._idle: list[http.client.HTTPConnection] = []  # list.pop/append are atomic: no lock

    def get(self, target: str, headers: Mapping[str, str]) -> Reply:
        """GET `target` (path and query); raises http.client.HTTPException or OSError without an answer."""
        conn = self._checkout()
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()  # half a conversation: the connection cannot be trusted again
            raise
        if response.will_close or len(self._idle) >= self.max_idle:
            conn.close()
        else:
            self._idle.append(conn)
        return Reply(response.status, response.headers, data)

    def close(self) -> None:
        while True:
            try:
                self._idle.pop().close()
            except IndexError:  # none left (another thread may have taken the last)
                return

    def _checkout(self) -> http.client.HTTPConnection:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            if conn.sock is not None and not wait_for_read(conn.sock, timeout=0.0):
                return conn
            conn.close()  # closed by the vendor while idle (EOF is readable): never send on it
        if self._https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s, context=self._context())
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        conn.connect()
        return conn

    def _context(self) -> ssl.SSLContext:
        """Hostname checked, certificates verified against the bundle (file or directory)."""
        if self._tls is None:
            in_dir = self._ca_bundle is not None and os.path.isdir(self._ca_bundle)
            self._tls = ssl.create_default_context(cafile=None if in_dir else self._ca_bundle,
                                                   capath=self._ca_bundle if in_dir else None)
        return self._tls


__all__ = ["REDIRECT_STATUSES", "KeepAliveHost", "Reply"]
