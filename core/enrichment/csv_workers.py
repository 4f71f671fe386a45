"""CSV enrichment on the workers: the file's rows go into the database with the job, the workers run
its chunks, and `download` writes the enriched copy from the stored rows (on any machine)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core import metrics
from core.enrichment.chunks import ChunkEngine, ChunkState
from core.enrichment.csv_enrich import CsvEnrichment, CsvEnrichRequest, CsvPlan, row_input
from core.enrichment.csv_files import CsvOutput, read_rows
from core.enrichment.jobs import JobInfo
from core.enrichment.rows import OUTPUT_COLUMNS, RowInput
from core.errors import InvalidInput
from storage.models.enrichment import JobStatus


@dataclass(frozen=True)
class WorkerJobStatus:
    job: JobInfo
    chunks: ChunkState

    @property
    def finished(self) -> bool:
        """Nothing left to run: done, or cancelled with every chunk settled (its rows written)."""
        return self.job.status != JobStatus.RUNNING and self.chunks.settled


class CsvOnWorkers:
    def __init__(self, csv: CsvEnrichment, chunks: ChunkEngine) -> None:
        self.csv = csv
        self.chunks = chunks
        self.jobs = csv.jobs

    def submit(self, request: CsvEnrichRequest, plan: CsvPlan) -> JobInfo:
        if request.resume:
            raise InvalidInput("--resume: a job on the workers resumes by itself; use `enrich-jobs wait JOB`")
        job, _ = self.csv.start_or_resume(request, plan)
        fmt = plan.format
        meta = {
            "label": request.input_path.name,
            "has_bom": fmt.has_bom,
            "delimiter": fmt.delimiter,
            "header": list(fmt.header),
            "width": fmt.width,
            "data_rows": fmt.data_rows,
        }

        def rows() -> Iterator[tuple[list[str], RowInput]]:
            for row in read_rows(fmt):
                yield row.cells, row_input(plan.header_map, row.index, row.cells)

        self.chunks.submit(job, rows(), meta)
        metrics.JOBS_SUBMITTED.inc()
        return self.jobs.job(job.id)

    def resume(self, job_id: int, *, max_credits: int | None = None) -> JobInfo:
        """An incomplete job's undone rows run again on the workers (ChunkEngine.resume)."""
        return self.chunks.resume(job_id, max_credits=max_credits)

    def status(self, job_id: int) -> WorkerJobStatus:
        return WorkerJobStatus(self.jobs.job(job_id), self.chunks.state(job_id))

    def download(self, job_id: int, output_path: Path) -> int:
        """Write the enriched CSV (via OUT.partial, renamed when complete). Returns rows written."""
        status = self.status(job_id)
        if not status.finished:
            raise InvalidInput(
                f"job {job_id} is still running ({status.job.progress.done_rows} of "
                f"{status.job.progress.total_rows} rows): `tributary enrich-jobs wait {job_id}` first"
            )
        meta = self.chunks.meta(job_id)
        fmt = _Format(meta["has_bom"], meta["delimiter"], tuple(meta["header"]), meta["width"])
        partial = output_path.with_name(output_path.name + ".partial")
        written = 0
        with CsvOutput(partial, fmt, OUTPUT_COLUMNS) as out:  # type: ignore[arg-type]
            for cells, result in self.chunks.outputs(job_id):
                out.write(cells, result.values())
                written += 1
        os.replace(partial, output_path)
        return written


@dataclass(frozen=True)
class _Format:
    """What CsvOutput reads of a CsvFormat, rebuilt from the job's stored input."""

    has_bom: bool
    delimiter: str
    header: tuple[str, ...]
    width: int


__all__ = ["CsvOnWorkers", "WorkerJobStatus"]
