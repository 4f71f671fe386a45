"""pytest fixtures for the mailnet; import them into a conftest.py to use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mailnet.net import MailNet
from tests.mailnet.scenarios import standard


@pytest.fixture
def mailnet() -> Iterator[MailNet]:
    """The standard world (scenarios.standard), started; stopped and checked after the test."""
    net = standard(MailNet())
    with net:
        yield net
