"""The Google Sheets add-on: what a Sheets job adds to its enrichment job, per row, and team settings.

- sheets_job: one per enrichment job started from the sidebar (same id): where its rows live in the
  spreadsheet, the column mapping and output columns, the writing state, and the latest OAuth access
  token of the member, encrypted (core/secrets.py), removed when the job ends; the SHA-256 of that
  token and of the last one Google refused (so a refused token is told apart without decrypting).
- sheets_row: one per input row of the job: the sheet row it was read from, the fingerprint of its
  identifier cells at the start (core/sheets/placement.py finds the row again after a sort), and what
  was written back (outcome, status text, credits shown), NULL until settled.
- sheets_team_domain: a team that accepts only Google users of its Workspace domain (the ID token's
  `hd` claim).
"""

from datetime import datetime

from sqlalchemy import Column, Index
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.limits import MAX_NAME_CHARS, MAX_TEXT_CHARS
from storage.timeutil import utcnow

MAX_SPREADSHEET_ID_CHARS = 128
MAX_FINGERPRINT_CHARS = 128
MAX_OUTCOME_CHARS = 16
MAX_STATE_CHARS = 24
MAX_DOMAIN_CHARS = 253
TOKEN_SHA256_CHARS = 64


class SheetsJob(SQLModel, table=True):
    __tablename__ = "sheets_job"
    __table_args__ = (Index("ix_sheets_job_state", "state"),)

    job_id: int = Field(foreign_key="enrichment_job.id", primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    spreadsheet_id: str = Field(max_length=MAX_SPREADSHEET_ID_CHARS)
    sheet_id: int
    sheet_name: str = Field(max_length=MAX_NAME_CHARS)
    header_row: int  # 1-based; 0 when the selection has no header row
    # {field: column letter} of the identifier columns, and {"email"|"mobile"|"status": letter}.
    mapping: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outputs: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # {"email"|"mobile"|"status": header}: written into empty header cells of new output columns.
    output_headers: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # enriching -> writing -> done | incomplete; waiting_for_token; cancelled; failed.
    state: str = Field(max_length=MAX_STATE_CHARS)
    message: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    rows_total: int = 0
    rows_written: int = 0
    token_encrypted: str | None = None  # the member's latest OAuth access token (SecretBox)
    token_sha256: str | None = Field(default=None, max_length=TOKEN_SHA256_CHARS)  # of that token
    # Of the last token Google refused: a sidebar that sends it again does not revive the job.
    refused_token_sha256: str | None = Field(default=None, max_length=TOKEN_SHA256_CHARS)
    writing_until: datetime | None = None  # a write pass owns the job until then
    retry_of: int | None = None  # the job whose rows this one retries
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SheetsRow(SQLModel, table=True):
    __tablename__ = "sheets_row"

    job_id: int = Field(foreign_key="enrichment_job.id", primary_key=True)
    row_index: int = Field(primary_key=True)  # the enrichment job's 0-based input row
    sheet_row: int  # 1-based row of the sheet it was read from
    fingerprint: str = Field(max_length=MAX_FINGERPRINT_CHARS)
    blank: bool = False  # no identifier cell filled: nothing is ever written to it
    # found | not_found | free | skipped | not_enriched | changed | kept; NULL until settled.
    outcome: str | None = Field(default=None, max_length=MAX_OUTCOME_CHARS)
    status: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    credits_shown: int = 0
    kept: bool = False  # an output cell already held a value of the user's: left as it was
    written_row: int | None = None  # where its values went (the row may have moved)


class SheetsTeamDomain(SQLModel, table=True):
    __tablename__ = "sheets_team_domain"

    team_id: int = Field(foreign_key="team.id", primary_key=True)
    google_domain: str = Field(max_length=MAX_DOMAIN_CHARS)
    updated_at: datetime = Field(default_factory=utcnow)
