"""Data requests: a team accessing a person's email or mobile for credits.

- service.py   `DataRequests`: claim, look up, settle (the rules: see its docstring). Front ends call
               `access` (one person, one kind); jobs call `access_people` (a batch, claimed and
               settled together) and `cost_of` (what a request cost, when resuming).
- budget.py    who pays: the request's own hold, a job's spend cap (`Budget(hold_id)`), or the wallet
               at settle (`Budget.uncapped()`); one payer type per case.
- costs.py     what a settled request cost, and what paid it.
- preview.py   the free preview of a person before paying (the contributor database only).
- recheck.py   the stale re-check: a "verified" email checked too long ago is checked again before
               anyone pays for it.
- shortcuts.py `access_email`, `access_mobile`, `access_kinds`, `access_many` over the two above
               (tests and scripts).
"""

from core.data_requests.budget import Budget, BudgetExhausted
from core.data_requests.costs import RequestCost
from core.data_requests.preview import PersonPreview, PersonPreviews
from core.data_requests.recheck import Reverify, stale_email_rechecker
from core.data_requests.service import (
    DEFAULT_HOLD_TIMEOUT_S,
    DEFAULT_LEASE_S,
    MAX_PEOPLE_PER_CALL,
    AccessResult,
    DataRequests,
    RequestInProgress,
    SettleWrites,
    SourceFor,
)
from core.data_requests.shortcuts import MAX_BATCH, BatchItem

__all__ = [
    "DEFAULT_HOLD_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "MAX_BATCH",
    "MAX_PEOPLE_PER_CALL",
    "AccessResult",
    "BatchItem",
    "Budget",
    "BudgetExhausted",
    "DataRequests",
    "PersonPreview",
    "PersonPreviews",
    "RequestCost",
    "RequestInProgress",
    "Reverify",
    "SettleWrites",
    "SourceFor",
    "stale_email_rechecker",
]
