"""Job changes: a person's employment history, and telling the teams that hold them.

- history.py  where a person worked when (shared, no team): a corroborated move closes one stint
              and opens the next, in the transaction that moved the person (core/contributions.py).
- notices.py  each team contact saved before the move is told once, to its owner, through the outbox.
- service.py  JobChanges: detection (idempotent sweep), a team's changes, the digest's summary.

The "job change" flag of a team contact is derived live, not stored: a contact is flagged when its
person's current stint began after the team saved it. Like email statuses, it then shows at once and
cannot go stale; only the fact that the owner was told is stored (job_change_notice), which is what
makes the notice go out once.
"""

from core.job_changes.history import JobEvidence
from core.job_changes.service import JobChange, JobChanges, JobChangeSummary

__all__ = ["JobChange", "JobChangeSummary", "JobChanges", "JobEvidence"]
