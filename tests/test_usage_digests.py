"""Usage digests on both databases, from a realistic ledger history made through the real services."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import Engine

from core.accounts import Accounts
from core.data_requests import DataRequests
from core.errors import InvalidInput
from core.ledger import Ledger, UsageMeta
from core.people.contacts import NewEmail, NewPerson, NewPhone, add_person
from core.sources.database import DatabaseSource
from core.usage.chart import COLOURS, HEIGHT_PX, WIDTH_PX, render_chart
from core.usage.digest import UsageDigests
from core.usage.forecast import forecast_run_out
from core.usage.periods import last_complete_period, period_containing
from core.usage.text import render_text
from storage.models.digests import DigestPeriod
from storage.models.enums import Category, DataRequestStatus, EmailStatus, Feature, PhoneKind, PhoneStatus, Role


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# The week under test: Monday 2 March 2026 to Sunday 8 March 2026. The digest is made on Monday 9th.
WEEK_START = utc(2026, 3, 2)
NOW = utc(2026, 3, 9, 8, 0)


@dataclass
class History:
    digests: UsageDigests
    accounts: Accounts
    ledger: Ledger
    team_id: int
    ids: dict[str, int]


@pytest.fixture
def history(engine: Engine) -> History:
    """Spend across members, features, categories and days, a refund granted and one pending.

    Team acme on plan basic (1000 credits a cycle, email 1, mobile 8), cycles start on the 4th."""
    accounts = Accounts(engine)
    ledger = accounts.ledger
    team = accounts.create_team("acme", plan="basic", anchor_day=4, now=utc(2026, 2, 10, 10))
    ids = {
        "boss": accounts.add_member("acme", "boss@acme.test", role=Role.ADMIN).id,
        "rep": accounts.add_member("acme", "rep@acme.test").id,
        "mkt": accounts.add_member("acme", "mkt@acme.test").id,
    }
    checked = utc(2026, 2, 25)

    def person(name: str, email: str | None = None, status=EmailStatus.VERIFIED, mobile: str | None = None):
        emails = [NewEmail(email, status, 95, checked)] if email else []
        phones = [NewPhone(mobile, PhoneKind.MOBILE, PhoneStatus.VALID, "mobile")] if mobile else []
        return add_person(engine, NewPerson(full_name=name, company="Initech", domain="initech.test",
                                            emails=emails, phones=phones))

    requests = DataRequests(engine, DatabaseSource(engine), accounts=accounts, hold_timeout_s=30, lease_s=5)

    def access(kind, member, who, feature, at, *, charged=True):
        fn = requests.access_email if kind == "email" else requests.access_mobile
        result = fn("acme", member, who, feature=feature, now=at)
        assert (result.status == DataRequestStatus.CHARGED) is charged, result

    def charge(member, credits, category, feature, at, key):
        meta = UsageMeta(category=category, feature=feature, member_id=ids.get(member), action="test")
        ledger.charge(team.id, credits, key=key, meta=meta, now=at)

    # In chronological order, as they would happen.
    ledger.schedule_refund(team.id, 1, key="bounce-1", earned_at=utc(2026, 2, 20),
                           meta=UsageMeta(category=Category.EMAIL, member_id=ids["rep"]))
    charge("rep", 2, Category.ENRICHMENT, Feature.SLACK, utc(2026, 3, 1, 23, 59, 59), "sun-before")  # last week
    access("email", "rep@acme.test", person("Ann A", "ann@initech.test"), Feature.SLACK, WEEK_START)  # Mon 00:00:00
    access("mobile", "rep@acme.test", person("Bob B", mobile="+447700900123"), Feature.SLACK, utc(2026, 3, 2, 9))
    access("email", "rep@acme.test", person("Nobody"), Feature.SLACK, utc(2026, 3, 2, 10), charged=False)
    access("email", "mkt@acme.test", person("Cat C", "cat@initech.test", EmailStatus.ACCEPT_ALL), Feature.SHEETS,
           utc(2026, 3, 2, 11), charged=False)
    charge("mkt", 3, Category.AI, Feature.SHEETS, utc(2026, 3, 2, 23, 59, 59), "mon-last-second")
    access("email", "mkt@acme.test", person("Dan D", "dan@initech.test"), Feature.SHEETS, utc(2026, 3, 3))
    result = accounts.close_cycle("acme", now=utc(2026, 3, 4))  # grants the February refund, dated 4 March 00:00
    assert result.refunded_credits == 1
    charge(None, 5, Category.API, Feature.API, utc(2026, 3, 4, 10), "api-key-call")
    charge("boss", 4, Category.EXPORT, Feature.CSV, utc(2026, 3, 5, 14), "export-1")
    charge("rep", 2, Category.ENRICHMENT, Feature.CSV, utc(2026, 3, 5, 15), "enrich-1")
    ledger.schedule_refund(team.id, 1, key="bounce-2", earned_at=utc(2026, 3, 6, 12),
                           meta=UsageMeta(category=Category.EMAIL, member_id=ids["mkt"]))
    access("email", "rep@acme.test", person("Eve E", "eve@initech.test"), Feature.CLI, utc(2026, 3, 8, 23, 59, 59))
    charge("rep", 7, Category.AI, Feature.CLI, utc(2026, 3, 9), "next-monday")  # next week
    return History(UsageDigests(engine, ledger, accounts), accounts, ledger, team.id, ids)


def _by(entries, attr):
    return {getattr(e, attr): e.credits for e in entries}


def test_weekly_digest_exact_figures(history: History) -> None:
    d = history.digests.build("acme", "weekly", at=utc(2026, 3, 5), now=NOW)
    assert (d.period.start, d.period.end) == (WEEK_START, utc(2026, 3, 9))
    assert d.spent_credits == 25
    assert _by(d.by_category, "category") == {
        Category.EMAIL: 3, Category.MOBILE: 8, Category.ENRICHMENT: 2, Category.EXPORT: 4, Category.API: 5,
        Category.AI: 3,
    }
    assert [c.category for c in d.by_category] == list(Category)
    assert _by(d.by_feature, "feature") == {
        Feature.SLACK: 9, Feature.SHEETS: 4, Feature.CSV: 6, Feature.API: 5, Feature.CLI: 1, Feature.CRM: 0,
    }
    ids = history.ids
    assert [(m.member_id, m.email, m.credits) for m in d.by_member] == [
        (ids["rep"], "rep@acme.test", 12), (None, None, 5), (ids["boss"], "boss@acme.test", 4),
        (ids["mkt"], "mkt@acme.test", 4),
    ]
    assert [day.day for day in d.daily] == [date(2026, 3, 2) + timedelta(days=i) for i in range(7)]
    assert [day.spent_credits for day in d.daily] == [12, 1, 5, 6, 0, 0, 1]
    monday = _by(d.daily[0].by_category, "category")
    assert monday == {Category.EMAIL: 1, Category.MOBILE: 8, Category.ENRICHMENT: 0, Category.EXPORT: 0,
                      Category.API: 0, Category.AI: 3}
    assert (d.refunds.granted_credits, d.refunds.granted_count) == (1, 1)
    assert (d.refunds.pending_credits, d.refunds.pending_count) == (1, 1)
    # March allotment 1000 + refund 1 - spend since the February credits expired (5+4+2+1+7).
    assert d.balance.available_credits == 982 and d.balance.held_credits == 0
    assert d.balance.available_credits == history.ledger.balance(history.team_id, NOW).available_credits


def test_run_out_date_uses_the_trailing_seven_days(history: History) -> None:
    d = history.digests.build("acme", "weekly", at=utc(2026, 3, 5), now=NOW)
    f = d.forecast
    assert (f.window_start, f.window_end, f.window_days) == (utc(2026, 3, 2, 8), NOW, 7)
    # In [Mon 08:00, next Mon 08:00): 8 + 3 + 1 + 5 + 4 + 2 + 1 + 7; the 00:00 email is outside.
    assert f.window_spent_credits == 31
    # 982 credits at 31 per 7 days last 221.74 days: from 9 March 08:00 that is 17 October 01:48.
    assert f.runs_out_on == date(2026, 10, 17)
    assert "credits run out on 2026-10-17" in render_text(d)


def test_forecast_arithmetic() -> None:
    now = utc(2026, 1, 1, 12)
    assert forecast_run_out(70, 14, now).runs_out_on == date(2026, 2, 5)  # 2 a day: 35 days
    assert forecast_run_out(70, 14, now).credits_per_day == 2
    # 10 credits at 7 a week: 10 days, landing exactly on 11 Jan 12:00.
    assert forecast_run_out(10, 7, now).runs_out_on == date(2026, 1, 11)
    # 1 credit at 8 a week lasts 21 hours: 2 January 09:00.
    assert forecast_run_out(1, 8, now).runs_out_on == date(2026, 1, 2)
    assert forecast_run_out(0, 5, now).runs_out_on == date(2026, 1, 1)  # already out
    idle = forecast_run_out(500, 0, now)
    assert idle.runs_out_on is None and not idle.beyond_horizon
    slow = forecast_run_out(1_000_000, 1, now)
    assert slow.runs_out_on is None and slow.beyond_horizon


def test_day_boundaries(history: History) -> None:
    sunday = history.digests.build("acme", "daily", at=utc(2026, 3, 1, 12), now=NOW)
    assert sunday.spent_credits == 2 and _by(sunday.by_category, "category")[Category.ENRICHMENT] == 2
    monday = history.digests.build("acme", "daily", at=utc(2026, 3, 2, 23, 59, 59), now=NOW)
    assert (monday.period.start, monday.period.end) == (utc(2026, 3, 2), utc(2026, 3, 3))
    assert monday.spent_credits == 12  # includes 00:00:00 and 23:59:59, not Sunday's 23:59:59
    tuesday = history.digests.build("acme", "daily", at=utc(2026, 3, 3), now=NOW)
    assert tuesday.spent_credits == 1 and len(tuesday.daily) == 1
    next_week = history.digests.build("acme", "weekly", at=utc(2026, 3, 9), now=NOW)
    assert next_week.spent_credits == 7  # the 00:00:00 Monday charge opens the next week
    before = history.digests.build("acme", "weekly", at=utc(2026, 3, 1), now=NOW)
    assert before.period.start == utc(2026, 2, 23) and before.spent_credits == 2


def test_period_arithmetic() -> None:
    assert period_containing("weekly", utc(2026, 3, 8, 23, 59, 59)).start == utc(2026, 3, 2)
    assert period_containing("weekly", utc(2026, 3, 9)).start == utc(2026, 3, 9)
    assert period_containing(DigestPeriod.DAILY, utc(2026, 12, 31, 23)).end == utc(2027, 1, 1)
    assert last_complete_period("weekly", utc(2026, 3, 9)).start == utc(2026, 3, 2)
    assert last_complete_period("daily", utc(2026, 3, 9, 0, 0, 1)).start == utc(2026, 3, 8)
    for bad in ("monthly", "off", ""):
        with pytest.raises(InvalidInput, match="period: .* is not one of daily, weekly"):
            period_containing(bad, utc(2026, 3, 9))


def test_zero_activity_periods(history: History) -> None:
    # A week of acme's with no spend at all (a refund was only scheduled in it).
    quiet = history.digests.build("acme", "weekly", at=utc(2026, 2, 18), now=utc(2026, 2, 23))
    assert quiet.spent_credits == 0 and quiet.by_member == ()
    assert [(c.category, c.credits) for c in quiet.by_category] == [(c, 0) for c in Category]
    assert [(f.feature, f.credits) for f in quiet.by_feature] == [(f, 0) for f in Feature]
    assert [day.spent_credits for day in quiet.daily] == [0] * 7
    assert quiet.refunds.pending_credits == 1 and quiet.refunds.granted_credits == 0  # pending as of 23 Feb
    assert quiet.forecast.runs_out_on is None and quiet.forecast.window_spent_credits == 0
    text = render_text(quiet)
    assert "Spent: 0 credits" in text and "nobody spent credits" in text and "no run-out date" in text

    history.accounts.create_team("idle", plan="free", now=utc(2026, 3, 1))
    idle = history.digests.build("idle", "daily", at=utc(2026, 3, 3), now=NOW)
    assert idle.spent_credits == 0 and idle.refunds.pending_count == 0 and idle.balance.available_credits >= 0


def test_text_rendering_contains_the_figures(history: History) -> None:
    text = render_text(history.digests.build("acme", "weekly", at=WEEK_START, now=NOW))
    for expected in (
        "Usage digest for acme: weekly, Mon 2026-03-02 to Sun 2026-03-08 (UTC)",
        "Spent: 25 credits",
        "By category: email 3, mobile 8, enrichment 2, export 4, api 5, ai 3",
        "By feature: slack 9, sheets 4, csv 6, api 5, cli 1",
        "rep@acme.test   12",
        "(no member)     5",
        "Refunds: 1 credit granted (1), 1 credit pending (1)",
        "Balance: 982 credits available, 0 held (as of 2026-03-09 08:00 UTC)",
        "at 4.4 credits/day over the last 7 days",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_chart_is_a_png_of_the_expected_size_and_deterministic(history: History) -> None:
    digest = history.digests.build("acme", "weekly", at=WEEK_START, now=NOW)
    png = render_chart(digest)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    counts = {rgb: n for n, rgb in image.convert("RGB").getcolors(maxcolors=WIDTH_PX * HEIGHT_PX)}

    def area(category: Category) -> int:
        return counts.get(tuple(int(COLOURS[category][i : i + 2], 16) for i in (1, 3, 5)), 0)

    # Each category's colour covers an area that grows with its credits (legend swatches are all
    # the same size): mobile 8 > export 4 > ai 3 > enrichment 2.
    assert area(Category.MOBILE) > area(Category.EXPORT) > area(Category.AI) > area(Category.ENRICHMENT) > 0
    assert render_chart(digest) == png  # same digest, same bytes

    quiet = Image.open(io.BytesIO(render_chart(history.digests.build("acme", "weekly", at=utc(2026, 2, 18), now=NOW))))
    assert quiet.size == (WIDTH_PX, HEIGHT_PX)
    counts = {rgb: n for n, rgb in quiet.convert("RGB").getcolors(maxcolors=WIDTH_PX * HEIGHT_PX)}
    assert len({area(c) for c in Category}) == 1  # no bars: only the equal legend swatches


# ---- a property: the digest neither loses nor invents a credit --------------------------------

SPAN_S = 16 * 86400
spends = st.lists(
    st.tuples(
        st.integers(1, 50),  # credits
        st.sampled_from([*Category, None]),
        st.sampled_from([*Feature, None]),
        st.sampled_from(["a", "b", None]),  # member
        st.integers(0, SPAN_S - 1),  # seconds after the span's start
    ),
    max_size=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spends=spends, kind=st.sampled_from([DigestPeriod.DAILY, DigestPeriod.WEEKLY]), probe_s=st.integers(0, SPAN_S))
def test_digest_totals_match_the_ledger_exactly(engine: Engine, spends, kind, probe_s) -> None:
    accounts = Accounts(engine)
    start = utc(2026, 4, 1)  # a Wednesday: the span crosses week boundaries
    name = f"t{accounts.teams()[-1].id + 1 if accounts.teams() else 1}"
    team = accounts.create_team(name, plan="free", anchor_day=1, now=start)
    members = {m: accounts.add_member(name, f"{m}@x.test").id for m in ("a", "b")}
    accounts.ledger.grant(team.id, 10_000, key="pack", expires_at=utc(2027, 1, 1), now=start)
    for i, (credits, category, feature, member, offset) in enumerate(sorted(spends, key=lambda s: s[4])):
        meta = UsageMeta(category=category, feature=feature, member_id=members.get(member))
        accounts.ledger.charge(team.id, credits, key=f"s{i}", meta=meta, now=start + timedelta(seconds=offset))
    digest = UsageDigests(engine, accounts.ledger, accounts).build(
        name, kind, at=start + timedelta(seconds=probe_s), now=start + timedelta(seconds=SPAN_S)
    )
    inside = [s for s in spends if digest.period.start <= start + timedelta(seconds=s[4]) < digest.period.end]
    expected = sum(s[0] for s in inside)
    assert digest.spent_credits == expected
    for breakdown in (digest.by_category, digest.by_feature, digest.by_member):
        assert sum(e.credits for e in breakdown) == expected
    assert sum(day.spent_credits for day in digest.daily) == expected
    for category in [*Category, None]:
        want = sum(s[0] for s in inside if s[1] == category)
        got = {c.category: c.credits for c in digest.by_category}.get(category, 0)
        assert got == want
    for index, day in enumerate(digest.daily):
        day_start = digest.period.start + timedelta(days=index)
        assert day.spent_credits == sum(
            s[0] for s in inside if day_start <= start + timedelta(seconds=s[4]) < day_start + timedelta(days=1)
        )


def test_chart_legend_omits_empty_categories_and_separates_thousands(engine: Engine) -> None:
    """Issue 12 item 20: the legend listed every category (most at 0) and numbers had no separators."""
    import matplotlib.style

    from core.usage.chart import build_figure

    accounts = Accounts(engine)
    team = accounts.create_team("bulk", plan="professional", anchor_day=1, now=utc(2026, 3, 1))
    boss = accounts.add_member("bulk", "boss@bulk.test", role=Role.ADMIN).id
    meta = UsageMeta(category=Category.ENRICHMENT, feature=Feature.CSV, member_id=boss, action="test")
    accounts.ledger.charge(team.id, 1234, key="big", meta=meta, now=utc(2026, 3, 3, 12))
    digest = UsageDigests(engine, accounts.ledger, accounts).build("bulk", "weekly", at=WEEK_START, now=NOW)
    with matplotlib.style.context("default"):
        ax = build_figure(digest).axes[0]
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        assert len(legend) == 1 and legend[0].endswith("(1,234)"), legend
        assert "1,234 credits spent" in ax.get_title(loc="left")
        ax.figure.canvas.draw()
        assert any("," in label.get_text() for label in ax.get_yticklabels()), ax.get_yticklabels()
