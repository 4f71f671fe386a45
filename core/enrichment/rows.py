"""What goes into an enrichment job (one row per input line) and what comes out (the appended columns).

Naming: the appended columns are named once here, `tributary_<field>` (OUTPUT_PREFIX), the scheme
every front end that writes next to a user's own columns shares (CSV now, the Sheets add-on next), so
an enriched `tributary_email` never collides with the user's `email`/`Email` column. When the input
itself already has a column of that name (an enriched file enriched again), `output_header` adds
`_2`, `_3`, ... until no header repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from core.normalize.contact import ContactQuery

# The fields every front end appends to a row, in this order (also the keys of a stored row).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "email",
    "email_status",
    "email_score",
    "mobile_phone",
    "phone_status",
    "office_phone",
    "title",
    "company",
    "domain",
    "linkedin_url",
    "credits_charged",
    "match_confidence",
    "error",
)
OUTPUT_PREFIX = "tributary_"
# A row left undone by money, not by its data: `--resume` (with a higher cap, or after a top-up)
# finishes exactly these rows. One plain status each, never the ledger's wording.
NOT_ENRICHED_CAP = "not enriched: spend cap reached"
NOT_ENRICHED_CREDITS = "not enriched: out of credits"
UNDONE_ERRORS = (NOT_ENRICHED_CAP, NOT_ENRICHED_CREDITS)


def output_column(field: str) -> str:
    """The header of an appended field, e.g. `tributary_email`."""
    return OUTPUT_PREFIX + field


def output_header(input_header: Sequence[str], appended: Sequence[str] = OUTPUT_COLUMNS) -> tuple[str, ...]:
    """The whole output header: the input's own names, then the appended fields' names, made unique
    against the input (compared case-insensitively, as spreadsheets and most CSV readers do)."""
    taken = {name.strip().lower() for name in input_header}
    names = list(input_header)
    for field in appended:
        base = output_column(field)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name.lower())
        names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class RowInput:
    """One input row. `problem` is set when the row cannot be looked up (it is still output, marked)."""

    index: int  # 0-based position among the data rows
    query: ContactQuery
    problem: str | None = None


@dataclass(frozen=True)
class RowOutput:
    index: int
    person_id: int | None = None
    email: str = ""
    email_status: str = ""
    email_score: str = ""
    mobile_phone: str = ""
    phone_status: str = ""
    office_phone: str = ""
    title: str = ""
    company: str = ""
    domain: str = ""
    linkedin_url: str = ""
    credits_charged: int = 0
    match_confidence: str = ""
    error: str = ""

    @property
    def matched(self) -> bool:
        """Matched to someone: exactly the rows whose match_confidence is filled (a person of the shared
        database, or a record only this team's own uploads hold, which has no person id)."""
        return bool(self.match_confidence)

    @property
    def undone(self) -> bool:
        """Left for `--resume`: the spend cap or the wallet stopped it (see UNDONE_ERRORS)."""
        return self.error in UNDONE_ERRORS

    @property
    def found(self) -> bool:
        return bool(self.email or self.mobile_phone)

    def values(self) -> list[str]:
        return [str(getattr(self, name)) for name in OUTPUT_COLUMNS]

    def stored(self) -> dict[str, str]:
        """The appended values worth keeping (empty ones left out) for the job's row table."""
        return {name: value for name, value in zip(OUTPUT_COLUMNS, self.values(), strict=True) if value}

    @classmethod
    def from_stored(cls, index: int, person_id: int | None, credits_charged: int, values: dict[str, str]) -> RowOutput:
        known = {f.name for f in fields(cls)} - {"index", "person_id", "credits_charged"}
        return cls(
            index=index,
            person_id=person_id,
            credits_charged=credits_charged,
            **{name: value for name, value in values.items() if name in known},
        )
