"""Engagement: a reply to a send made through Tributary marks its address likely_to_engage.

- headers.py  what a reply says about itself: sender, In-Reply-To/References, date; auto-replies
              and bounces are not replies.
- replies.py  the rule: a reply whose In-Reply-To/References names a send of ours, from the address
              that send went to, promotes the shared address (no team recorded), with its date.
- window.py   the clock: likely_to_engage returns to verified after the recency window; a send
              that drew no bounce is recorded as delivered (weaker evidence, never promoting).
- service.py  Engagement, the service front ends and the mailbox poll call.
"""

from core.engagement.replies import ReplyOutcome, ReplyResult
from core.engagement.service import Engagement

__all__ = ["Engagement", "ReplyOutcome", "ReplyResult"]
