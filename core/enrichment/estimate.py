"""The cost preview of an enrichment (`--dry-run`): the exact maximum and the expected cost, charging nothing.

- Maximum: every distinct person the rows match, for every kind asked (email, mobile) that the team has
  not already paid for, at the team's plan price. Only matched people can be charged (a data request
  needs a person), each at most once per kind, so no run can cost more; and a run whose sources find
  chargeable data for everyone costs exactly this. A spend cap lowers it to the cap.
- Expected: the same people and kinds, counted only where the contributor database already holds
  what would be charged today: a verified (or likely-to-engage) email, a mobile number. External
  providers in the waterfall can find more, so the real cost lies between expected and maximum.
- Against the wallet: "needs up to N credits, you have M" (`available_credits`); a capped job holds
  min(maximum, cap, available) when it starts.
- Contribution: whether the team's rows that match no one are offered to the shared contributor
  database (`contributes`; a team opts out with `tributary teams set-contribute TEAM --off`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import Connection, Engine, select

from core.accounts import Accounts
from core.enrichment.rows import RowInput
from core.people.matching import MatchOutcome, match_contacts
from storage.db import read_transaction
from storage.models import DataRequest, EmailAddress, Phone
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, DataKind, DataRequestStatus, PhoneKind

_DR = DataRequest.__table__
_EMAIL = EmailAddress.__table__
_PHONE = Phone.__table__
CHUNK_ROWS = 500
_CHARGEABLE_EMAIL = [s.value for s in CHARGEABLE_EMAIL_STATUSES]
ID_CHUNK = 500


@dataclass(frozen=True)
class CostEstimate:
    rows: int
    rows_with_errors: int  # cannot be looked up (no identifier, unreadable field, ambiguous)
    matched_rows: int
    distinct_people: int
    email_price_credits: int
    mobile_price_credits: int
    already_paid_emails: int  # people whose email the team already paid for: free again
    already_paid_mobiles: int
    max_credits: int  # exact maximum, after the spend cap
    max_uncapped_credits: int
    expected_credits: int
    cap_credits: int | None
    available_credits: int = 0  # the team's spendable credits now
    contributes: bool = True  # the team's unmatched rows go to the shared contributor database

    @property
    def short_credits(self) -> int:
        """How much more than the team has the run could cost (0 when it can pay the maximum)."""
        return max(0, self.max_credits - self.available_credits)


def estimate_cost(
    engine: Engine,
    accounts: Accounts,
    team_ref: int | str,
    rows: Iterable[RowInput],
    *,
    want_email: bool,
    want_mobile: bool,
    max_credits: int | None = None,
    on_row: Callable[[int], None] | None = None,
) -> CostEstimate:
    team = accounts.team(team_ref)
    email_price = team.plan.price_email_credits if want_email else 0
    mobile_price = team.plan.price_mobile_credits if want_mobile else 0
    matches = _match_rows(engine, team.id, rows, on_row)
    prices = _Prices(email_price if want_email else None, mobile_price if want_mobile else None)
    cost = _price_people(engine, team.id, sorted(matches.people), prices)
    capped = cost.max_credits if max_credits is None else min(cost.max_credits, max_credits)
    return CostEstimate(
        rows=matches.rows,
        rows_with_errors=matches.errors,
        matched_rows=matches.matched,
        distinct_people=len(matches.people),
        email_price_credits=email_price,
        mobile_price_credits=mobile_price,
        already_paid_emails=cost.paid_emails,
        already_paid_mobiles=cost.paid_mobiles,
        max_credits=capped,
        max_uncapped_credits=cost.max_credits,
        expected_credits=min(cost.expected_credits, capped),
        cap_credits=max_credits,
        available_credits=accounts.ledger.balance(team.id).available_credits,
        contributes=team.contribute,
    )


@dataclass
class _Matches:
    """What the rows match: counts as the run's summary gives them, and the distinct people."""

    rows: int = 0
    errors: int = 0
    matched: int = 0
    people: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Prices:
    """The price of each kind asked for; None for a kind not asked."""

    email: int | None
    mobile: int | None


@dataclass
class _Cost:
    paid_emails: int = 0  # people whose email the team already paid for
    paid_mobiles: int = 0
    max_credits: int = 0
    expected_credits: int = 0


def _match_rows(
    engine: Engine, team_id: int, rows: Iterable[RowInput], on_row: Callable[[int], None] | None
) -> _Matches:
    """Match the rows chunk by chunk, as the run will (calling `on_row` with the rows seen so far)."""
    out = _Matches()
    for chunk in _chunks(iter(rows)):
        todo = [r for r in chunk if r.problem is None]
        out.errors += len(chunk) - len(todo)
        for result in match_contacts(engine, [r.query for r in todo], team_id=team_id, batch_size=max(1, len(todo))):
            if result.outcome == MatchOutcome.MATCHED and result.best:
                # Counted like the run's summary (a filled match_confidence); only people can cost.
                out.matched += 1
                if result.best.person_id is not None:
                    out.people.add(result.best.person_id)
            elif result.outcome in (MatchOutcome.AMBIGUOUS, MatchOutcome.INVALID):
                out.errors += 1
        out.rows += len(chunk)
        if on_row:
            on_row(out.rows)
    return out


def _price_people(engine: Engine, team_id: int, ids: list[int], prices: _Prices) -> _Cost:
    """The maximum and expected cost of these people (in id order), skipping kinds already paid for."""
    cost = _Cost()
    for start in range(0, len(ids), ID_CHUNK):
        part = ids[start : start + ID_CHUNK]
        with read_transaction(engine) as conn:
            paid, have_email, have_mobile = _what_people_have(conn, team_id, part)
        for person_id in part:
            if prices.email is not None:
                if (person_id, DataKind.EMAIL.value) in paid:
                    cost.paid_emails += 1
                else:
                    cost.max_credits += prices.email
                    cost.expected_credits += prices.email if person_id in have_email else 0
            if prices.mobile is not None:
                if (person_id, DataKind.MOBILE.value) in paid:
                    cost.paid_mobiles += 1
                else:
                    cost.max_credits += prices.mobile
                    cost.expected_credits += prices.mobile if person_id in have_mobile else 0
    return cost


def _what_people_have(
    conn: Connection, team_id: int, part: list[int]
) -> tuple[set[tuple[int, str]], set[int], set[int]]:
    """For these people: the (person, kind) the team already paid for, who has a chargeable email
    in the contributor database, and who has a mobile number there."""
    paid = {
        (r.person_id, r.kind)
        for r in conn.execute(
            select(_DR.c.person_id, _DR.c.kind).where(
                _DR.c.team_id == team_id,
                _DR.c.person_id.in_(part),
                _DR.c.status == DataRequestStatus.CHARGED.value,
            )
        )
    }
    have_email = set(
        conn.execute(
            select(_EMAIL.c.person_id)
            .where(_EMAIL.c.person_id.in_(part), _EMAIL.c.status.in_(_CHARGEABLE_EMAIL))
            .distinct()
        ).scalars()
    )
    have_mobile = set(
        conn.execute(
            select(_PHONE.c.person_id)
            .where(_PHONE.c.person_id.in_(part), _PHONE.c.kind == PhoneKind.MOBILE.value)
            .distinct()
        ).scalars()
    )
    return paid, have_email, have_mobile


def _chunks(rows: Iterator[RowInput]) -> Iterator[list[RowInput]]:
    while chunk := list(islice(rows, CHUNK_ROWS)):
        yield chunk
