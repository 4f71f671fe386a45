"""Enrichment chunks as huey tasks: `run_chunk` (one chunk, one attempt), `watch_chunk` (scheduled at
a lease's end: a dead worker's chunk goes back to the queue) and a pump every minute (a backstop for
an enqueue lost between the database commit and the queue)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from huey import Huey, crontab
from sqlalchemy import func, select

from core import metrics
from core.enrichment.chunks import ChunkEngine, WrittenChunk
from storage.db import read_transaction
from storage.models import EnrichmentChunk, EnrichmentJob
from storage.models.enrichment import JobStatus
from storage.models.enums import ContactSource, Feature

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

TASK_PREFIX = "tributary.enrich."
WATCH_MARGIN_S = 0.5  # the watch runs this long after the lease's end
# Front ends whose rows are an upload: contributed, and matched people saved as contacts (source).
_UPLOAD_SOURCES = {Feature.CSV: ContactSource.CSV, Feature.SHEETS: ContactSource.SHEETS}

_CH = EnrichmentChunk.__table__
_JOB = EnrichmentJob.__table__


class EnrichmentTasks:
    def __init__(self, services: Services, huey: Huey) -> None:
        self.huey = huey
        s = services.settings
        self.engine = ChunkEngine(
            services.enrichment_jobs,
            chunk_rows=s.enrich_chunk_rows,
            lease_s=s.enrich_chunk_lease_s,
            team_chunks=s.enrich_team_chunks,
        )
        # Tasks return None: nothing piles up in the result store.
        self.run_chunk = huey.task(name=TASK_PREFIX + "run_chunk")(
            lambda chunk_id, attempt: self.engine.run_chunk(chunk_id, attempt) and None
        )
        self.watch_chunk = huey.task(name=TASK_PREFIX + "watch_chunk")(self.engine.check)
        self.pump_all = huey.periodic_task(crontab(minute="*"), name=TASK_PREFIX + "every_minute.pump")(
            self._every_minute
        )
        self.engine.enqueue = lambda chunk_id, attempt: self.run_chunk(chunk_id, attempt)
        self.engine.watch = self._watch
        self.csv = services.csv_enrichment
        self.engine.on_written = self._share

    def _every_minute(self) -> None:
        self.engine.renew_holds()
        self.engine.pump()

    def _share(self, written: WrittenChunk) -> None:
        """A written chunk's rows are shared as an in-process run of the same front end shares them: a
        CSV file's or a sheet's rows are an upload (the REST API's JSON rows are lookups, not shared)."""
        source = _UPLOAD_SOURCES.get(written.job.options.feature)
        if source is not None:
            job = written.job
            self.csv.share(job.team_id, job.member_id, written.unmatched, written.person_ids, source)

    def _watch(self, chunk_id: int, attempt: int, lease_until: datetime) -> None:
        self.watch_chunk.schedule(args=(chunk_id, attempt), eta=lease_until + timedelta(seconds=WATCH_MARGIN_S))

    def read_gauges(self) -> None:
        """Queue depth, running jobs and chunks by state, for a scrape."""
        metrics.QUEUE_DEPTH.set(self.huey.pending_count())
        with read_transaction(self.engine.engine) as conn:
            running = conn.execute(select(func.count()).where(_JOB.c.status == JobStatus.RUNNING.value)).scalar_one()
            states = dict(conn.execute(select(_CH.c.state, func.count()).group_by(_CH.c.state)).all())
        metrics.JOBS_IN_FLIGHT.set(running)
        for state in ("pending", "queued", "leased"):
            metrics.CHUNKS_QUEUED.labels(state=state).set(int(states.get(state, 0)))


__all__ = ["EnrichmentTasks"]
