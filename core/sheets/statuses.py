"""What the status column says about a row, and which summary count it falls in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.enrichment.jobs import CANCELLED_ERROR
from core.enrichment.rows import NOT_ENRICHED_CAP, RowOutput

FOUND, NOT_FOUND, FREE, SKIPPED = "found", "not_found", "free", "skipped"
NOT_ENRICHED, CHANGED = "not_enriched", "changed"
OUTCOMES = (FOUND, NOT_FOUND, FREE, SKIPPED, NOT_ENRICHED, CHANGED)
NO_IDENTIFIER = "skipped: no identifier"
MAX_STATUS_CHARS = 200  # a status cell stays readable
ROW_CHANGED = "row changed during the job"
KEPT_SUFFIX = " · kept your value"
NOT_ENRICHED_CANCELLED = "not enriched: the job was cancelled"


@dataclass(frozen=True)
class RowStatus:
    outcome: str
    text: str
    email: str = ""  # what goes into the output columns (empty: nothing)
    mobile: str = ""


def credits_text(credits: int) -> str:
    return f"found · {_label(credits)}"


def _label(credits: int) -> str:
    return f"{credits} credit{'s' if credits != 1 else ''}"


_CREDITS = re.compile(r" · (\d+) credits?$")


def with_credits(text: str, credits: int) -> str:
    """`text` reporting `credits` (a found row says "found · N credits"; another, e.g. a row the spend
    cap stopped after its email was paid, gets " · N credits" appended)."""
    if credits <= 0:
        return text
    if text.startswith(("found · ", "free:")):
        return credits_text(credits)
    return f"{_CREDITS.sub('', text)} · {_label(credits)}"


def row_status(out: RowOutput, *, want_email: bool, want_mobile: bool, credits: int, paid_before: bool) -> RowStatus:
    """`credits`: what this row reports (a person's credits go to one row); `paid_before`: the team had
    already paid for this person (or an earlier row of this job did)."""
    if out.error == CANCELLED_ERROR:
        return RowStatus(NOT_ENRICHED, NOT_ENRICHED_CANCELLED)
    if out.undone:  # what was found before the cap stopped it is written, and its credits said
        text = with_credits(NOT_ENRICHED_CAP if out.error == NOT_ENRICHED_CAP else out.error, credits)
        return RowStatus(NOT_ENRICHED, text, out.email if want_email else "", out.mobile_phone if want_mobile else "")
    if out.error:
        if "needs at least one of" in out.error:
            return RowStatus(SKIPPED, NO_IDENTIFIER)
        if "ambiguous match" in out.error:
            return RowStatus(SKIPPED, "skipped: several people match; add an email or LinkedIn URL")
        detail = out.error.split(": ", 1)[-1]
        return RowStatus(SKIPPED, f"skipped: {detail}"[:MAX_STATUS_CHARS])
    email = out.email if want_email else ""
    mobile = out.mobile_phone if want_mobile else ""
    if not (email or mobile):
        return RowStatus(NOT_FOUND, "not found")
    if credits > 0:
        return RowStatus(FOUND, credits_text(credits), email, mobile)
    if paid_before:
        return RowStatus(FREE, "free: already accessed", email, mobile)
    return RowStatus(FREE, "found · free (not chargeable)", email, mobile)


def credits_in(text: str) -> int:
    """The credits a status text reports (what the tests add up against the ledger)."""
    match = _CREDITS.search(text or "")
    return int(match.group(1)) if match else 0
