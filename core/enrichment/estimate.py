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
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Engine, select

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
    people: set[int] = set()
    total = errors = matched = 0
    for chunk in _chunks(iter(rows)):
        todo = [r for r in chunk if r.problem is None]
        errors += len(chunk) - len(todo)
        for result in match_contacts(engine, [r.query for r in todo], team_id=team.id, batch_size=max(1, len(todo))):
            if result.outcome == MatchOutcome.MATCHED and result.best:
                # Counted like the run's summary (a filled match_confidence); only people can cost.
                matched += 1
                if result.best.person_id is not None:
                    people.add(result.best.person_id)
            elif result.outcome in (MatchOutcome.AMBIGUOUS, MatchOutcome.INVALID):
                errors += 1
        total += len(chunk)
        if on_row:
            on_row(total)
    paid_email = paid_mobile = 0
    max_cost = expected = 0
    ids = sorted(people)
    for start in range(0, len(ids), ID_CHUNK):
        part = ids[start : start + ID_CHUNK]
        with read_transaction(engine) as conn:
            paid = {
                (r.person_id, r.kind)
                for r in conn.execute(
                    select(_DR.c.person_id, _DR.c.kind).where(
                        _DR.c.team_id == team.id,
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
        for person_id in part:
            if want_email:
                if (person_id, DataKind.EMAIL.value) in paid:
                    paid_email += 1
                else:
                    max_cost += email_price
                    expected += email_price if person_id in have_email else 0
            if want_mobile:
                if (person_id, DataKind.MOBILE.value) in paid:
                    paid_mobile += 1
                else:
                    max_cost += mobile_price
                    expected += mobile_price if person_id in have_mobile else 0
    capped = max_cost if max_credits is None else min(max_cost, max_credits)
    return CostEstimate(
        rows=total,
        rows_with_errors=errors,
        matched_rows=matched,
        distinct_people=len(people),
        email_price_credits=email_price,
        mobile_price_credits=mobile_price,
        already_paid_emails=paid_email,
        already_paid_mobiles=paid_mobile,
        max_credits=capped,
        max_uncapped_credits=max_cost,
        expected_credits=min(expected, capped),
        cap_credits=max_credits,
        available_credits=accounts.ledger.balance(team.id).available_credits,
        contributes=team.contribute,
    )


def _chunks(rows: Iterator[RowInput]) -> Iterator[list[RowInput]]:
    while chunk := list(islice(rows, CHUNK_ROWS)):
        yield chunk
