"""What a sync may buy within its spend cap: emails and mobiles the CRM lacks, through data requests.

Those the contributor database holds and the team has not accessed yet are bought through data
requests (net-new rules: a repeat is free) within the sync's cap. Each request is counted at its
full price before it runs, so even if every one of them finds something chargeable the sync cannot
spend more than the cap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from core.accounts import MemberInfo, TeamInfo
from core.crm.fields import PushField
from core.crm.records import RecordRow
from core.data_requests import Budget, DataRequests
from core.errors import TributaryError
from storage.models import DataRequest, EmailAddress, Phone
from storage.models.enums import CHARGEABLE_EMAIL_STATUSES, DataKind, Feature, PhoneKind, PhoneStatus

_DR = DataRequest.__table__
_E = EmailAddress.__table__
_PH = Phone.__table__
MAX_PEOPLE_PER_ACCESS = 500


@dataclass(frozen=True)
class AccessPlan:
    emails: tuple[int, ...]  # person ids
    mobiles: tuple[int, ...]
    max_credits: int  # what the plan costs if every request finds something chargeable
    skipped_for_cap: int  # requests left out because the cap would not cover them


@dataclass(frozen=True)
class AccessOutcome:
    charged_credits: int
    accessed: int  # requests that found something
    failed: int  # refused (wallet empty) or errors: nothing charged for them


def plan_access(
    conn: Connection, team: TeamInfo, records: Sequence[RecordRow], field_map: Mapping[str, str], cap_credits: int
) -> AccessPlan:
    wanted: dict[DataKind, list[int]] = {DataKind.EMAIL: [], DataKind.MOBILE: []}
    props = {DataKind.EMAIL: field_map.get(PushField.EMAIL), DataKind.MOBILE: field_map.get(PushField.MOBILE)}
    people = sorted({r.person_id for r in records if r.person_id is not None})
    done = {tuple(d) for d in conn.execute(select(_DR.c.person_id, _DR.c.kind).where(_DR.c.team_id == team.id))}
    with_email = _people_with(conn, people, DataKind.EMAIL)
    with_mobile = _people_with(conn, people, DataKind.MOBILE)
    seen: set[tuple[int, DataKind]] = set()
    for r in records:
        for kind, on_file in ((DataKind.EMAIL, with_email), (DataKind.MOBILE, with_mobile)):
            prop = props[kind]
            key = (r.person_id, kind)
            if prop is None or r.seen.get(prop) or key in seen or (r.person_id, kind.value) in done:
                continue
            seen.add(key)
            if r.person_id in on_file:
                wanted[kind].append(r.person_id)
    price = {DataKind.EMAIL: team.plan.price_email_credits, DataKind.MOBILE: team.plan.price_mobile_credits}
    chosen: dict[DataKind, list[int]] = {DataKind.EMAIL: [], DataKind.MOBILE: []}
    total = skipped = 0
    for kind in (DataKind.EMAIL, DataKind.MOBILE):
        for pid in wanted[kind]:
            if total + price[kind] > cap_credits:
                skipped += 1
                continue
            total += price[kind]
            chosen[kind].append(pid)
    return AccessPlan(tuple(chosen[DataKind.EMAIL]), tuple(chosen[DataKind.MOBILE]), total, skipped)


def _people_with(conn: Connection, people: Sequence[int], kind: DataKind) -> set[int]:
    out: set[int] = set()
    for i in range(0, len(people), 1000):
        chunk = people[i : i + 1000]
        if kind == DataKind.EMAIL:
            stmt = select(_E.c.person_id).where(
                _E.c.person_id.in_(chunk), _E.c.status.in_([s.value for s in CHARGEABLE_EMAIL_STATUSES])
            )
        else:
            stmt = select(_PH.c.person_id).where(
                _PH.c.person_id.in_(chunk), _PH.c.kind == PhoneKind.MOBILE.value, _PH.c.status != PhoneStatus.INVALID
            )
        out.update(conn.execute(stmt).scalars())
    return out


def run_access(data_requests: DataRequests, team: TeamInfo, member: MemberInfo, plan: AccessPlan) -> AccessOutcome:
    charged = found = failed = 0
    for kind, people in ((DataKind.EMAIL, plan.emails), (DataKind.MOBILE, plan.mobiles)):
        for i in range(0, len(people), MAX_PEOPLE_PER_ACCESS):
            answers = data_requests.access_people(
                team, member, list(people[i : i + MAX_PEOPLE_PER_ACCESS]), [kind],
                feature=Feature.CRM, budget=Budget.uncapped(),
            )  # fmt: skip
            for answer in answers:
                result = answer if isinstance(answer, BaseException) else answer[kind]
                if isinstance(result, TributaryError | BaseException):
                    failed += 1
                    continue
                charged += result.charged_credits
                found += result.email is not None or bool(result.mobile_phones)
    return AccessOutcome(charged, found, failed)
