from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.accounts import Accounts, AlreadyExists, cycle_bounds
from core.errors import InvalidInput, NotFound
from storage.models.enums import LotSource, Role

T0 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "at", "start", "end"),
    [
        (31, datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        (31, datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)),
        (
            1,
            datetime(2026, 12, 31, 23, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (15, datetime(2026, 1, 14, tzinfo=UTC), datetime(2025, 12, 15, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)),
    ],
)
def test_cycle_bounds_clamp_to_short_months(anchor, at, start, end) -> None:
    assert cycle_bounds(anchor, at) == (start, end)


def test_create_team_opens_a_cycle_with_the_plan_allotment(engine: Engine) -> None:
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="basic", now=T0)
    assert team.plan.name == "basic" and team.cycle_anchor_day == 31
    cycle = accounts.current_cycle("acme")
    assert (cycle.starts_at, cycle.ends_at) == (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC))
    assert accounts.ledger.balance(team.id, T0).available_credits == 1000
    [lot] = accounts.ledger.lots(team.id)
    assert (lot.source, lot.expires_at) == (LotSource.ALLOTMENT, cycle.ends_at)


def test_team_and_member_errors_are_clear_and_write_nothing(engine: Engine) -> None:
    accounts = Accounts(engine)
    with pytest.raises(NotFound, match="unknown plan 'gold'"):
        accounts.create_team("acme", plan="gold")
    with pytest.raises(InvalidInput, match="team name: must not be empty"):
        accounts.create_team("  ")
    with pytest.raises(InvalidInput, match="anchor day"):
        accounts.create_team("acme", anchor_day=32)
    assert accounts.teams() == []
    accounts.create_team("acme")
    with pytest.raises(AlreadyExists):
        accounts.create_team("acme")
    with pytest.raises(NotFound, match="unknown team 'nope'"):
        accounts.add_member("nope", "a@b.test")
    with pytest.raises(InvalidInput, match="member email 'not-an-email'"):
        accounts.add_member("acme", "not-an-email")
    admin = accounts.add_member("acme", "Admin@Acme.test", role=Role.ADMIN)
    assert admin.email == "admin@acme.test" and admin.is_admin
    with pytest.raises(AlreadyExists):
        accounts.add_member("acme", "admin@acme.test")
    assert [m.email for m in accounts.members("acme")] == ["admin@acme.test"]


def test_admin_defined_plan_with_rollover_and_prices(engine: Engine) -> None:
    accounts = Accounts(engine)
    plan = accounts.create_plan("custom", monthly_credits=50, rollover=True, price_mobile_credits=5)
    assert (plan.monthly_credits, plan.rollover, plan.price_email_credits, plan.price_mobile_credits) == (
        50,
        True,
        1,
        5,
    )
    with pytest.raises(InvalidInput, match="monthly credits"):
        accounts.create_plan("bad", monthly_credits=-1)
    with pytest.raises(AlreadyExists):
        accounts.create_plan("custom", monthly_credits=1)
    team = accounts.create_team("rolling", plan="custom", now=T0)
    accounts.ledger.charge(team.id, 10, key="spend", meta=_meta(), now=T0)
    accounts.close_cycle(team.id, now=T0 + timedelta(days=40))
    # Rollover plan: last cycle's 40 unspent credits stay, plus the new allotment.
    assert accounts.ledger.balance(team.id, T0 + timedelta(days=40)).available_credits == 90


def test_cycle_close_expires_grants_and_is_idempotent(engine: Engine) -> None:
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="free", now=T0)  # 100 a month
    ledger = accounts.ledger
    ledger.charge(team.id, 30, key="c1", meta=_meta(), now=T0)
    ledger.schedule_refund(team.id, 1, key="bounce-1", earned_at=T0 + timedelta(days=1))
    before_end = T0 + timedelta(days=27)
    assert accounts.close_cycle(team.id, now=before_end).closed == []  # not ended yet: nothing happens
    assert ledger.balance(team.id, before_end).available_credits == 70

    after_end = datetime(2026, 3, 1, tzinfo=UTC)
    first = accounts.close_cycle(team.id, now=after_end)
    assert len(first.closed) == 1 and first.allotted_credits == 100 and first.refunded_credits == 1
    assert ledger.balance(team.id, after_end).available_credits == 101  # 70 expired; 100 new + 1 refund
    transfers_after_first = ledger.transfers(team.id)
    second = accounts.close_cycle(team.id, now=after_end)
    assert second.closed == [] and second.allotted_credits == 0 and second.refunded_credits == 0
    assert ledger.transfers(team.id) == transfers_after_first
    assert sum(ledger.account_totals().values()) == 0


def test_cycle_close_catches_up_on_missed_months(engine: Engine) -> None:
    accounts = Accounts(engine)
    team = accounts.create_team("acme", plan="free", anchor_day=1, now=datetime(2026, 1, 5, tzinfo=UTC))
    result = accounts.close_cycle(team.id, now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [c.starts_at.month for c in result.closed] == [1, 2, 3]
    assert result.current.starts_at == datetime(2026, 4, 1, tzinfo=UTC)
    # Only the current cycle's credits are spendable; the skipped months' expired.
    assert accounts.ledger.balance(team.id, datetime(2026, 4, 2, tzinfo=UTC)).available_credits == 100


def _meta():
    from core.ledger import UsageMeta

    return UsageMeta(category="email", feature="cli")


def test_team_references_are_unambiguous(engine: Engine) -> None:
    """Issue 12 item 11: a team named `3` used to hide the team with id 3 in every command."""
    from sqlalchemy import update

    from storage.models import Team

    accounts = Accounts(engine)
    first = accounts.create_team("first", now=T0)
    second = accounts.create_team("second", now=T0)
    for bad in ("3", str(first.id), "#7", "a\nb", "tab\there", "bell\x07"):
        with pytest.raises(InvalidInput, match="team name"):
            accounts.create_team(bad, now=T0)
    assert accounts.team(f"#{second.id}").name == "second"
    assert accounts.team(str(second.id)).name == "second"  # a bare number no team bears as a name: the id
    with pytest.raises(InvalidInput, match="written #"):
        accounts.team("#two")
    # A team named after another team's id (created before names were checked): refused, not guessed.
    with engine.begin() as conn:
        conn.execute(update(Team.__table__).where(Team.__table__.c.id == second.id).values(name=str(first.id)))
    with pytest.raises(InvalidInput, match=rf"team '{first.id}' is ambiguous.*write #{first.id}"):
        accounts.team(str(first.id))
    assert accounts.team(f"#{first.id}").name == "first"
    assert accounts.team(f"#{second.id}").name == str(first.id)
    with pytest.raises(InvalidInput, match="ambiguous"):
        accounts.add_member(str(first.id), "who@acme.test")


def test_plan_allotment_is_capped_like_a_grant(engine: Engine) -> None:
    accounts = Accounts(engine)
    with pytest.raises(InvalidInput, match="monthly credits: 99999999999 exceeds the limit of 1,000,000,000"):
        accounts.create_plan("huge", monthly_credits=99_999_999_999)
    assert accounts.create_plan("max", monthly_credits=1_000_000_000).monthly_credits == 1_000_000_000
    assert "huge" not in [p.name for p in accounts.plans()]
