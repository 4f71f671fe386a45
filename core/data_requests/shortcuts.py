"""Shortcuts over `DataRequests.access` and `access_people`, for tests and scripts: production calls
those two directly (the bot and the CLI `access`, jobs `access_people`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.accounts import MemberInfo, TeamInfo
from core.data_requests.budget import Budget
from core.errors import TributaryError
from core.people.types import PersonInfo
from core.sources.base import ContactSource
from storage.models.enums import DataKind, Feature

if TYPE_CHECKING:
    from core.data_requests.service import AccessResult

MAX_BATCH = 10_000


@dataclass(frozen=True)
class BatchItem:
    ref: str
    result: AccessResult | None
    error: str | None


class Shortcuts:
    """Mixed into `DataRequests`, whose `access`, `access_people` and `_context` these call."""

    if TYPE_CHECKING:
        access: Callable[..., AccessResult]
        access_people: Callable[..., list]
        _context: Callable[..., Any]

    def access_email(
        self,
        team: int | str,
        member: int | str,
        person: int | str,
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
    ) -> AccessResult:
        return self.access(team, member, person, DataKind.EMAIL, feature=feature, now=now, budget=budget)

    def access_mobile(
        self,
        team: int | str,
        member: int | str,
        person: int | str,
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
    ) -> AccessResult:
        return self.access(team, member, person, DataKind.MOBILE, feature=feature, now=now, budget=budget)

    def access_many(
        self,
        team: int | str,
        member: int | str,
        people: Sequence[int | str],
        kind: DataKind,
        *,
        feature: Feature = Feature.CLI,
    ) -> list[BatchItem]:
        """Each item succeeds or fails on its own; one bad reference never spoils the batch."""
        if len(people) > MAX_BATCH:
            raise TributaryError(f"batch: {len(people)} people exceeds the limit of {MAX_BATCH}")
        items = []
        for ref in people:
            try:
                items.append(BatchItem(str(ref), self.access(team, member, ref, kind, feature=feature), None))
            except TributaryError as exc:
                items.append(BatchItem(str(ref), None, str(exc)))
        return items

    def access_kinds(
        self,
        team_ref: int | str | TeamInfo,
        member_ref: int | str | MemberInfo,
        person_ref: int | str | PersonInfo,
        kinds: Sequence[DataKind],
        *,
        feature: Feature = Feature.CLI,
        now: datetime | None = None,
        budget: Budget | None = None,
        sources: Mapping[DataKind, ContactSource] | None = None,
    ) -> dict[DataKind, AccessResult | TributaryError]:
        """`access` for several kinds of one person, each with the same rules and outcome as its own
        `access`, but claimed together in one transaction and settled together in one (a job's
        email + mobile). Each kind succeeds or fails on its own: a user error is returned in its place."""
        ctx = self._context(team_ref, member_ref, person_ref, feature, now, budget)
        outcome = self.access_people(
            ctx.team, ctx.member, [ctx.person], kinds, feature=ctx.feature, now=now, budget=budget, sources=sources
        )[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
