"""The background tasks and their schedule, registered on one huey instance.

Schedule (crontab, UTC):
- every minute: expire holds and credits that are due; poll the bounce mailbox (if configured);
- every 5 minutes: close billing cycles that ended; decide bounces left undecided;
- every 15 minutes: send due usage digests (the digest engineer's function, when installed);
  sync the CRMs whose last sync is older than TRIBUTARY_CRM_SYNC_INTERVAL_MIN (core/crm/service.py);
  sync every connected mailbox (core/mailboxes; one failing mailbox does not stop the others);
- every hour (at :07): the engagement clock (likely_to_engage back to verified after the window,
  delivered sends counted) and the job-change notice sweep.
Every task is idempotent (see maintenance.py), so a run repeated, or run by two workers at once,
changes nothing more than one run. The mailbox poll also takes a huey lock so that two workers do
not download the same messages at the same time (an efficiency, not what makes it correct).
Each task can also be enqueued by hand with an explicit `now` (tests, catch-up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from core.api.jobs import spec_from_values
from core.bounces.mailbox import MailboxConfig, PollResult, poll_mailbox
from core.jobs.enrichment_tasks import EnrichmentTasks
from core.jobs.maintenance import close_due_cycles, run_engagement, send_due_digests, sweep_due_holds
from core.jobs.queue import make_huey

if TYPE_CHECKING:
    from core.services import Services
    from core.usage.delivery import DigestDelivery

log = logging.getLogger(__name__)

POLL_LOCK = "poll-bounce-mailbox"
MAILBOX_SYNC_LOCK = "sync-connected-mailboxes"
POLL_LOCK_TTL_S = 600  # a poller that died holding the lock frees it after this
TASK_PREFIX = "tributary."


class Jobs:
    def __init__(
        self,
        services: Services,
        huey: Huey | None = None,
        *,
        deliver_digest: Callable[[DigestDelivery], None] | None = None,
    ) -> None:
        self.services = services
        self.huey = huey or make_huey(services.settings)
        h = self.huey

        # huey's SQLite storage has no key expiry; there, consumers flush stale locks when they start.
        lock_ttl_s = POLL_LOCK_TTL_S if services.settings.redis_url else None

        def poll(now: datetime | None = None) -> PollResult:
            config = MailboxConfig.from_settings(services.settings)
            if config is None:
                return PollResult(0, 0, 0, 0, 0, skipped="no bounce mailbox configured")
            try:
                with h.lock_task(POLL_LOCK, ttl=lock_ttl_s):
                    return poll_mailbox(
                        config, services.bounce_intake, now=now, take_reply=services.engagement.take_reply
                    )
            except TaskLockedException:
                log.info("bounce mailbox: another worker is polling; skipped")
                return PollResult(0, 0, 0, 0, 0, skipped="another worker is polling")

        def process(now: datetime | None = None) -> int:
            return len(services.refunds.process_pending(now=now))

        # Tasks that can be enqueued (with an explicit `now` if wanted).
        self.close_due_cycles = h.task(name=TASK_PREFIX + "close_due_cycles")(
            lambda now=None: close_due_cycles(services, now)
        )
        self.sweep_holds = h.task(name=TASK_PREFIX + "sweep_holds")(lambda now=None: sweep_due_holds(services, now))
        self.poll_bounces = h.task(name=TASK_PREFIX + "poll_bounces")(poll)
        self.process_bounces = h.task(name=TASK_PREFIX + "process_bounces")(process)
        self.run_engagement = h.task(name=TASK_PREFIX + "run_engagement")(
            lambda now=None: run_engagement(services, now)
        )
        sync_mailboxes = partial(_sync_mailboxes, services, h, lock_ttl_s)
        self.sync_mailboxes = h.task(name=TASK_PREFIX + "sync_mailboxes")(sync_mailboxes)
        self.send_digests = h.task(name=TASK_PREFIX + "send_digests")(
            lambda now=None: send_due_digests(services, deliver_digest, now)
        )

        # REST API enrichment jobs (core/api/jobs.py): the web request enqueues, a worker runs.
        self.api_enrichment = h.task(name=TASK_PREFIX + "api_enrichment")(
            lambda job_id, spec: services.api.jobs.run(job_id, spec_from_values(spec))
        )
        # Enrichment jobs on workers: chunk tasks and their lease watch (core/jobs/enrichment_tasks.py).
        self.enrichment = EnrichmentTasks(services, h)

        # The schedule. Periodic tasks take no arguments: they act on the present.
        self.periodic = self._schedule(services, poll, process, deliver_digest, sync_mailboxes)

    def _schedule(
        self, services: Services, poll: Callable, process: Callable, deliver_digest: Callable | None,
        sync_mailboxes: Callable,
    ) -> list:
        h = self.huey
        periodic = [
            h.periodic_task(crontab(minute="*"), name=TASK_PREFIX + "every_minute.sweep_holds")(
                lambda: sweep_due_holds(services)
            ),
            h.periodic_task(crontab(minute="*"), name=TASK_PREFIX + "every_minute.poll_bounces")(lambda: poll()),
            h.periodic_task(crontab(minute="*/5"), name=TASK_PREFIX + "every_5_min.close_due_cycles")(
                lambda: close_due_cycles(services)
            ),
            h.periodic_task(crontab(minute="*/5"), name=TASK_PREFIX + "every_5_min.process_bounces")(lambda: process()),
            h.periodic_task(crontab(minute="*/15"), name=TASK_PREFIX + "every_15_min.send_digests")(
                lambda: send_due_digests(services, deliver_digest)
            ),
            h.periodic_task(crontab(minute="7"), name=TASK_PREFIX + "every_hour.run_engagement")(
                lambda: run_engagement(services)
            ),
            h.periodic_task(crontab(minute="*/15"), name=TASK_PREFIX + "every_15_min.sync_mailboxes")(
                sync_mailboxes
            ),
        ]
        if services.settings.crm_sync_interval_min:
            periodic.append(
                h.periodic_task(crontab(minute="*/15"), name=TASK_PREFIX + "every_15_min.crm_sync")(
                    lambda: services.crm.sync_due()
                )
            )
        return periodic

    def due_periodic(self, at: datetime) -> list[str]:
        """Names of the periodic tasks the scheduler would enqueue at `at` (UTC)."""
        return sorted(task.name for task in self.huey.read_periodic(at))


def _sync_mailboxes(services: Services, h: Huey, lock_ttl_s: int | None) -> int:
    """Sync every connected mailbox, one worker at a time (an efficiency: a sync is idempotent)."""
    try:
        with h.lock_task(MAILBOX_SYNC_LOCK, ttl=lock_ttl_s):
            return services.mailbox_sync().sync_all()
    except TaskLockedException:
        log.info("connected mailboxes: another worker is syncing; skipped")
        return 0


__all__ = ["Jobs"]
