"""An enrichment job shared by many workers: its input stored with it, split into chunks of rows that
workers take under a lease, and per-person claims so that a person is looked up once per job.

- enrichment_job_input: what a worker on another machine needs to run the job and write its output
  (the CSV's format; the rows themselves are in the chunks).
- enrichment_chunk: rows [first_row, first_row + row_count) with their cells and parsed queries;
  `state` pending -> queued (a task is on the queue) -> leased (a worker owns it until lease_until)
  -> done. A queued or leased chunk whose lease ran out goes back to pending (its worker died).
  `attempt` numbers each enqueue: a task carrying an older attempt is stale and does nothing.
- enrichment_claim: (job, person) -> the chunk that looks the person up, and its outcome once known.
"""

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from storage.timeutil import utcnow


class EnrichmentJobInput(SQLModel, table=True):
    __tablename__ = "enrichment_job_input"

    job_id: int = Field(foreign_key="enrichment_job.id", primary_key=True)
    chunk_rows: int
    # The input's CSV format (header, delimiter, BOM, width) so any machine can write the output.
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class EnrichmentChunk(SQLModel, table=True):
    __tablename__ = "enrichment_chunk"
    __table_args__ = (
        UniqueConstraint("job_id", "chunk_index", name="uq_enrichment_chunk_job_index"),
        Index("ix_enrichment_chunk_team_state", "team_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="enrichment_job.id")
    team_id: int = Field(foreign_key="team.id")  # fairness is per team
    chunk_index: int
    first_row: int
    row_count: int
    # [[cells, query fields, problem or null], ...] in input order.
    rows: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: str = Field(max_length=16)
    attempt: int = 0
    owner: str | None = Field(default=None, max_length=128)  # host:pid:thread of the leasing worker
    lease_until: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class EnrichmentClaim(SQLModel, table=True):
    __tablename__ = "enrichment_claim"

    job_id: int = Field(foreign_key="enrichment_job.id", primary_key=True)
    person_id: int = Field(primary_key=True)
    chunk_id: int  # the chunk that looks this person up for the job
    attempt: int  # the chunk's attempt that claimed it (a later attempt re-checks what was paid)
    lease_until: datetime
    # none_as_null: "no outcome yet" is SQL NULL (IS NULL finds it), not the JSON value null.
    outcome: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
