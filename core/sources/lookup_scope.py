"""One person's lookups at one moment: the requests of one data request (email, then mobile) looked
up one after another in one thread. Within the scope a source may serve the later requests with what
it learned for the earlier ones, instead of asking, logging and recording it all again (the waterfall
shares its phone pass: both requests walk the same phone sources)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_local = threading.local()


@contextmanager
def one_lookup() -> Iterator[None]:
    """Everything looked up inside belongs to one person's lookup (nesting starts a new one)."""
    previous = getattr(_local, "shared", None)
    _local.shared = {}
    try:
        yield
    finally:
        _local.shared = previous


def shared_in_lookup() -> dict[Any, Any] | None:
    """The current lookup's shared answers (sources key them by what they asked), or None outside one."""
    return getattr(_local, "shared", None)
