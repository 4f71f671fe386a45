"""Enrichment jobs (CSV now; Sheets and Slack next): one row per job, one row per settled input row.

The per-row table is what makes a job resumable: a row stored here is never looked up again, and its
stored output is written back when the job is re-run after a crash."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.limits import MAX_HEX_DIGEST_CHARS, MAX_NAME_CHARS
from storage.timeutil import utcnow


class JobStatus(StrEnum):
    RUNNING = "running"  # also what a crashed job is left as: `--resume` picks it up
    INTERRUPTED = "interrupted"  # stopped by the user (Ctrl-C): hold released, `--resume` continues
    INCOMPLETE = "incomplete"  # rows left undone by the spend cap or an empty wallet: `--resume` finishes them
    DONE = "done"
    CANCELLED = "cancelled"


# Statuses `--resume` continues (and `enrich-jobs cancel` ends).
RESUMABLE_STATUSES = (JobStatus.RUNNING, JobStatus.INTERRUPTED, JobStatus.INCOMPLETE)


class EnrichmentJob(SQLModel, table=True):
    __tablename__ = "enrichment_job"
    __table_args__ = (Index("ix_enrichment_job_team_fingerprint", "team_id", "input_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    member_id: int = Field(foreign_key="member.id")
    feature: str = Field(max_length=16)
    label: str = Field(max_length=MAX_NAME_CHARS)  # e.g. the CSV file name; shown in job lists
    # Hash of the input and the options that change results: `--resume` only continues the same work.
    input_fingerprint: str = Field(max_length=MAX_HEX_DIGEST_CHARS)
    want_email: bool
    want_mobile: bool
    max_credits: int | None = None
    # The spend cap's ledger hold; a resumed job whose hold expired takes a new one for what is left.
    hold_id: int | None = None
    # Credits posted from earlier holds of this job (a resumed job whose hold had expired): the new
    # hold is only what is left of the cap.
    spent_before_hold_credits: int = 0
    status: str = Field(max_length=16)
    cancel_requested: bool = False
    total_rows: int | None = None
    done_rows: int = 0
    matched_rows: int = 0
    found_rows: int = 0
    error_rows: int = 0
    charged_credits: int = 0
    runs: int = 1  # 1 + how many times it was resumed
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class EnrichmentRow(SQLModel, table=True):
    """One settled input row: its output values, so a resumed job writes it back without a lookup."""

    __tablename__ = "enrichment_row"
    __table_args__ = (Index("ix_enrichment_row_job_person", "job_id", "person_id"),)

    job_id: int = Field(foreign_key="enrichment_job.id", primary_key=True)
    row_index: int = Field(primary_key=True)  # 0-based position of the data row in the input
    person_id: int | None = None
    credits_charged: int = 0
    # The appended output columns, by name; empty values are left out.
    output: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
