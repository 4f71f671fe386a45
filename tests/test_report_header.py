"""Issue 12 item 19: the pytest header announces skipped Redis cases as it does PostgreSQL ones."""

from __future__ import annotations

import pytest

from tests import conftest


@pytest.mark.parametrize(
    ("pg", "redis"), [(None, None), ("postgresql://u:pw@db.test/x", "redis://:pw@cache.test:6379/0")]
)
def test_header_names_each_server_or_says_its_cases_are_skipped(monkeypatch, pg, redis) -> None:
    monkeypatch.setattr(conftest, "PG_URL", pg)
    monkeypatch.setattr(conftest, "REDIS_URL", redis)
    header = "\n".join(conftest.pytest_report_header(None))
    if pg is None:
        assert "PostgreSQL not configured" in header and "Redis not configured" in header
        assert header.count("SKIPPED") == 2
    else:
        assert (
            "run against postgresql://u:***@db.test/x" in header
            and "run against redis://:***@cache.test:6379/0" in header
        )
        assert "pw" not in header and "SKIPPED" not in header
