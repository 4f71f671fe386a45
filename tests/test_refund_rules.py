"""The refund rule as a pure function, checked over every combination hypothesis can think of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.bounces.parse import BounceClass
from core.bounces.refunds import (
    REFUND_WINDOW_DAYS,
    Confirmation,
    Outcome,
    RefundCase,
    RefundReason,
    RequestFacts,
    decide,
)
from storage.models.enums import DataKind, DataRequestStatus, EmailStatus

ACCESS = datetime(2026, 3, 1, 12, tzinfo=UTC)

requests = st.builds(
    RequestFacts,
    id=st.integers(1, 10_000),
    kind=st.sampled_from(list(DataKind)),
    status=st.sampled_from(list(DataRequestStatus)),
    email_status=st.sampled_from([s.value for s in EmailStatus] + [None]),
    credits_charged=st.integers(0, 50),
    accessed_at=st.just(ACCESS),
)
cases = st.builds(
    RefundCase,
    bounce_class=st.sampled_from(list(BounceClass)),
    sent_at=st.integers(0, 60 * 24 * 3600).map(lambda s: ACCESS + timedelta(seconds=s)),
    request=st.none() | requests,
    already_refunded=st.booleans(),
    confirmation=st.sampled_from([Confirmation.CONFIRMED, Confirmation.REFUSED, Confirmation.UNCONFIRMED]),
)


@given(cases)
def test_granted_exactly_when_every_condition_holds(case: RefundCase) -> None:
    decision = decide(case)
    r = case.request
    eligible = (
        r is not None
        and r.kind == DataKind.EMAIL
        and r.status == DataRequestStatus.CHARGED
        and r.credits_charged > 0
        and r.email_status in ("verified", "likely_to_engage")
        and case.bounce_class == BounceClass.HARD
        and case.sent_at - r.accessed_at <= timedelta(days=REFUND_WINDOW_DAYS)
        and not case.already_refunded
        and case.confirmation == Confirmation.CONFIRMED  # a bounce is a claim until confirmed
    )
    assert (decision.outcome == Outcome.GRANTED) == eligible
    # Money: exactly the charged amount, never more, and nothing when refused.
    assert decision.credits == (r.credits_charged if eligible else 0)


@given(requests.filter(lambda r: r.kind == DataKind.MOBILE), st.sampled_from(list(BounceClass)))
def test_mobile_charges_are_never_refunded(request: RequestFacts, bounce_class: BounceClass) -> None:
    decision = decide(RefundCase(bounce_class, ACCESS + timedelta(days=1), request, False))
    assert decision.outcome == Outcome.REFUSED and decision.reason == RefundReason.MOBILE_NEVER_REFUNDED


def _charged(**kw) -> RequestFacts:
    return RequestFacts(1, DataKind.EMAIL, DataRequestStatus.CHARGED, "verified", 1, ACCESS, **kw)


def test_the_window_boundary_is_thirty_days() -> None:
    on_day_30 = decide(RefundCase(BounceClass.HARD, ACCESS + timedelta(days=30), _charged(), False))
    on_day_31 = decide(RefundCase(BounceClass.HARD, ACCESS + timedelta(days=31), _charged(), False))
    assert on_day_30.outcome == Outcome.GRANTED and on_day_30.credits == 1
    assert on_day_31.reason == RefundReason.SENT_AFTER_WINDOW


def test_soft_bounces_and_second_bounces_are_refused_with_their_reason() -> None:
    assert decide(RefundCase(BounceClass.SOFT, ACCESS, _charged(), False)).reason == RefundReason.SOFT_BOUNCE
    assert decide(RefundCase(BounceClass.HARD, ACCESS, _charged(), True)).reason == RefundReason.ALREADY_REFUNDED
    free = RequestFacts(1, DataKind.EMAIL, DataRequestStatus.FREE, "accept_all", 0, ACCESS)
    assert decide(RefundCase(BounceClass.HARD, ACCESS, free, False)).reason == RefundReason.NOT_CHARGED


def test_an_unconfirmed_or_refuted_bounce_is_refused_with_its_reason() -> None:
    refuted = RefundCase(BounceClass.HARD, ACCESS, _charged(), False, Confirmation.REFUSED)
    unsure = RefundCase(BounceClass.HARD, ACCESS, _charged(), False, Confirmation.UNCONFIRMED)
    assert decide(refuted).reason == RefundReason.MAILBOX_ACCEPTS_MAIL
    assert decide(unsure).reason == RefundReason.BOUNCE_UNCONFIRMED
