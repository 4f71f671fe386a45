"""The Sheets add-on's worker tasks, registered on the huey instance of core/jobs/tasks.py `Jobs`:
a write pass per job (`tributary.sheets.write`, enqueued when a worker stores a chunk that makes one due,
and by the sidebar's polls and cancel) and a pass
over every job still holding a token each minute (a backstop: results are written when the enrichment
ends even if no poll comes). Here, not in core, because writing needs the Sheets API client (gspread)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from huey import crontab

from sheets_addon.gateway import sheet_opener

if TYPE_CHECKING:
    from core.jobs.tasks import Jobs

TASK_PREFIX = "tributary.sheets."
_REGISTERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class SheetsTasks:
    def __init__(self, jobs: Jobs) -> None:
        services = jobs.services
        sheets = services.sheets
        open_sheet = sheet_opener(services.settings)
        h = jobs.huey
        self.write = h.task(name=TASK_PREFIX + "write")(lambda job_id: sheets.writer.run(job_id, open_sheet) and None)

        def every_minute() -> None:
            for job_id in sheets.store.active():
                self.write(job_id)

        self.periodic = h.periodic_task(crontab(minute="*"), name=TASK_PREFIX + "every_minute.write")(every_minute)
        if sheets.enqueue_write is None:
            sheets.enqueue_write = lambda job_id: self.write(job_id)
        jobs.enrichment.engine.after_chunk.append(sheets.chunk_stored)  # write when ready, not at a poll


def register_sheets_tasks(jobs: Jobs) -> SheetsTasks:
    """The Sheets tasks on this huey instance (registered once per instance)."""
    tasks = _REGISTERED.get(jobs.huey)
    if tasks is None:
        tasks = _REGISTERED[jobs.huey] = SheetsTasks(jobs)
    return tasks


__all__ = ["SheetsTasks", "register_sheets_tasks"]
