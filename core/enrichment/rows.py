"""What goes into an enrichment job (one row per input line) and what comes out (the appended columns)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.normalize.contact import ContactQuery

# The columns every front end appends to a row, in this order.
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
        return self.person_id is not None

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
