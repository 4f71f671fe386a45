"""One-time connect codes and rate-limit windows on SQLite and PostgreSQL, raced and at boundaries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import Accounts
from core.actors import Actor, Channel
from core.errors import AccessDenied, InvalidInput, RateLimited
from core.identities import Identities
from core.ledger import Ledger
from core.rate_limits import DatabaseCounter, RateLimits

STRANGER = Actor.outsider(None, Channel.SLACK)


@pytest.fixture
def links(engine: Engine) -> Identities:
    accounts = Accounts(engine, Ledger(engine))
    accounts.create_team("acme", plan="free")
    accounts.add_member("acme", "admin@acme.test", role="admin")
    accounts.create_team("beta", plan="free")
    return Identities(engine, accounts)


def test_a_raced_code_connects_exactly_one_workspace(links: Identities) -> None:
    code = links.create_connect_code("acme").code

    def redeem(i: int) -> str:
        try:
            return links.connect_with_code(f"TRACE{i}", code, STRANGER).team.name
        except InvalidInput as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(redeem, range(8)))
    assert outcomes.count("acme") == 1
    assert all("unknown, used or expired" in o for o in outcomes if o != "acme")
    assert sum(links.workspace(f"TRACE{i}") is not None for i in range(8)) == 1


def test_moving_a_connected_workspace_needs_an_admin_of_its_team(links: Identities) -> None:
    links.connect_with_code("TA", links.create_connect_code("acme").code, STRANGER)
    code = links.create_connect_code("beta").code
    beta_outsider = Actor.outsider(links.accounts.team("beta").id, Channel.SLACK)
    with pytest.raises(AccessDenied, match="only an admin of its team can move it"):
        links.connect_with_code("TA", code, beta_outsider)
    with pytest.raises(AccessDenied):
        links.connect_with_code("TA", code, STRANGER)
    assert links.workspace("TA").team.name == "acme"
    admin = links.accounts.member("admin@acme.test")
    acme_admin = Actor.of_member(admin.team_id, admin.id, True, Channel.SLACK)
    assert links.connect_with_code("TA", code, acme_admin).team.name == "beta"  # the refusals kept the code


@pytest.mark.parametrize("code", ["", " ", "x" * 200, "ABCD-EFGH-JKMN"])
def test_bad_codes_are_refused_with_how_to_get_one(links: Identities, code: str) -> None:
    with pytest.raises(InvalidInput, match="tributary slack connect-code TEAM"):
        links.connect_with_code("TX", code, STRANGER)
    assert links.workspace("TX") is None


def test_rate_limit_counts_every_hit_when_raced(engine: Engine) -> None:
    limits = RateLimits(DatabaseCounter(engine))

    def hit(_: int) -> bool:
        try:
            limits.hit("race", limit=5, window_s=3600, what="lookups")
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        passed = list(pool.map(hit, range(20)))
    assert passed.count(True) == 5


def test_rate_limit_window_starts_over_when_it_runs_out(engine: Engine) -> None:
    limits = RateLimits(DatabaseCounter(engine))
    t0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)  # windows are aligned to whole minutes
    assert [limits.hit("k", limit=2, window_s=60, what="lookups", now=t0 + timedelta(seconds=s)) for s in (0, 10)] == [
        1,
        2,
    ]
    with pytest.raises(RateLimited, match="at most 2 every 60 s; try again in 30 s") as refused:
        limits.hit("k", limit=2, window_s=60, what="lookups", now=t0 + timedelta(seconds=30))
    assert refused.value.retry_after_s == 30
    assert limits.hit("other", limit=2, window_s=60, what="lookups", now=t0 + timedelta(seconds=30)) == 1
    assert limits.hit("k", limit=2, window_s=60, what="lookups", now=t0 + timedelta(seconds=60)) == 1
    assert _rows(engine, "k") == 1  # the run-out window of "k" was dropped when the next one opened


def test_rate_limit_windows_follow_the_limiters_clock(engine: Engine) -> None:
    now_s = [datetime(2026, 12, 1, 9, 0, 59, tzinfo=UTC).timestamp()]
    limits = RateLimits(DatabaseCounter(engine), clock_s=lambda: now_s[0])
    first = limits.check("c", limit=1, window_s=60)
    assert first.allowed and first.reset_s == 1
    now_s[0] += 1  # the next minute: a new window
    assert limits.check("c", limit=1, window_s=60).allowed
    assert not limits.check("c", limit=1, window_s=60).allowed


def _rows(engine: Engine, key: str) -> int:
    from sqlalchemy import func, select

    from storage.models import RateWindow

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(RateWindow).where(RateWindow.key == key)).scalar_one()


@pytest.mark.parametrize(("key", "limit"), [("", 1), ("k" * 129, 1), ("k", 0)])
def test_rate_limit_refuses_bad_arguments(engine: Engine, key: str, limit: int) -> None:
    with pytest.raises(InvalidInput):
        RateLimits(DatabaseCounter(engine)).hit(key, limit=limit, window_s=60, what="lookups")
