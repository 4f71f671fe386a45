"""The small interface a CRM connector implements (HubSpot's is core/crm/hubspot.py).

A connector reads contacts changed since a cursor (the CRM's last-modified, epoch ms), reads and
updates contacts in batches, and makes sure the custom properties the admin mapped exist. Every
value is text, as CRM APIs carry them; an empty string means "no value".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.errors import TributaryError


class CrmError(TributaryError):
    """The CRM refused or failed a call that retrying will not fix."""

    http_status = 502


class CrmAuthError(CrmError):
    """The CRM refused the token (HTTP 401): reconnect with a valid one."""

    http_status = 401


@dataclass(frozen=True)
class CrmContact:
    id: str
    modified_ms: int  # the CRM's last-modified, epoch milliseconds
    properties: Mapping[str, str]  # only the properties asked for; missing = ""

    def value(self, name: str) -> str:
        return (self.properties.get(name) or "").strip()


@dataclass(frozen=True)
class CrmPage:
    contacts: list[CrmContact]
    remaining: int  # what the CRM says is still to come after this page (for a progress bar)


@dataclass(frozen=True)
class ContactUpdate:
    id: str
    properties: Mapping[str, str]


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    kind: str = "string"  # string | bool


class CrmConnector(Protocol):
    batch_limit: int  # most ids one batch read or update may carry

    def changed_since(self, cursor_ms: int, properties: Sequence[str], *, page_size: int) -> Iterator[CrmPage]:
        """Pages of contacts with last-modified >= cursor_ms, oldest first (ties in any order)."""
        ...

    def read(self, ids: Sequence[str], properties: Sequence[str]) -> list[CrmContact]:
        """The current values of at most `batch_limit` contacts (unknown ids are left out)."""
        ...

    def update(self, updates: Sequence[ContactUpdate]) -> list[CrmContact]:
        """Write at most `batch_limit` contacts; returns them with their new last-modified."""
        ...

    def ensure_properties(self, specs: Sequence[PropertySpec]) -> list[str]:
        """Create the custom properties that do not exist yet; returns the names created."""
        ...

    @property
    def calls(self) -> int:
        """HTTP requests sent so far (every attempt), for summaries and benchmarks."""
        ...
