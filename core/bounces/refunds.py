"""Bounce refunds: the seed's promise, decided once per bounce and granted at most once per data request.

Rule (all must hold to grant): the send went through Tributary and its address was bought by a
data request of the sending team; that request was an email request, charged, for an email that
was verified (or likely_to_engage) when accessed; the send happened within REFUND_WINDOW_DAYS of
the access; the bounce is hard; and no other bounce already earned this request's refund. Then a
refund of exactly the charged credits is scheduled (`Ledger.schedule_refund`, key
`bounce-refund:<data request id>`), which the next cycle close grants.

A bounce is a claim, not a fact. It counts only for the send it proves (core.bounces.matching:
VERP token or a team's signed webhook event, same recipient). Before it moves credits or shared
data, a hard bounce is confirmed, and the evidence is stored on the decision (`confirmation`,
`recheck_*`, `confirmed_by_bounce_id`). The written rule:
- the verifier re-checks the recipient's mailbox over SMTP now: rejected (invalid) -> confirmed;
  accepted (verified) -> refused, "the mailbox accepts mail", no refund, shared status unchanged;
- could not tell (catch-all, greylisted, timeout, unreachable): confirmed if another proven hard
  bounce of the same address exists for a send of *another* team (two independent claims); else
  re-checked every RECHECK_INTERVAL, and after MAX_RECHECKS attempts refused as unconfirmed;
- a soft bounce, or a hard one that would move neither credits nor shared data, needs no re-check.
A real bounce (the mailbox is gone) is confirmed by the first re-check: one refund, next cycle.

Every matched bounce gets one recorded decision, granted or refused with its reason, and one notice
for the member who sent. Exactly-once holds whatever the number of bounces, duplicate deliveries or
concurrent workers:
- the refund itself is keyed by the data request in the ledger (idempotent);
- the decision is unique per bounce, and the grant unique per data request (database constraints);
- the decision is written under the bounce's and the data request's row locks, re-reading what an
  earlier decision granted.
The ledger's `schedule_refund` runs in a transaction of its own before the decision is written; if
the process dies in between, the bounce stays unprocessed, the next pass schedules again (same key,
same row) and records the decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.bounces.matching import BounceClaim, MatchRefusal, SendMatch, SendStatus, match_send
from core.bounces.parse import BounceClass
from core.bounces.status_downgrade import downgrade_after_hard_bounce, downgraded_status
from core.errors import NotFound, check
from core.ledger import Ledger, UsageMeta, UsageRow
from core.outbox import NoticeKind, RefundNotice, add_notice
from core.team_contacts.owners import notice_member
from core.verify.result import EmailResult
from storage.db import is_sqlite, read_transaction, run_write
from storage.models import Bounce, DataRequest, EmailSend, Member, RefundDecision
from storage.models.enums import (
    CHARGEABLE_EMAIL_STATUSES,
    Category,
    DataKind,
    DataRequestStatus,
    EmailStatus,
    TransferKind,
)
from storage.timeutil import as_utc, utcnow

REFUND_WINDOW_DAYS = 30
# A hard bounce the SMTP re-check cannot judge is re-checked this often, this many times in all.
RECHECK_INTERVAL = timedelta(hours=6)
MAX_RECHECKS = 4

_B = Bounce.__table__
_S = EmailSend.__table__
_DR = DataRequest.__table__
_D = RefundDecision.__table__
_M = Member.__table__


class Outcome(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"


class RefundReason(StrEnum):
    HARD_BOUNCE_IN_WINDOW = "hard_bounce_within_window"  # the one reason to grant
    NOT_BOUGHT = "not_bought"  # the address was not bought by a data request of this team
    MOBILE_NEVER_REFUNDED = "mobile_never_refunded"
    NOT_CHARGED = "not_charged"  # the request was free (e.g. accept_all) or found nothing
    NOT_VERIFIED_WHEN_ACCESSED = "not_verified_when_accessed"
    SOFT_BOUNCE = "soft_bounce"
    SENT_AFTER_WINDOW = "sent_after_refund_window"
    ALREADY_REFUNDED = "already_refunded"
    MAILBOX_ACCEPTS_MAIL = "mailbox_accepts_mail"  # the SMTP re-check found the mailbox alive
    BOUNCE_UNCONFIRMED = "bounce_unconfirmed"  # neither the re-check nor another team's bounce confirmed it


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    UNCONFIRMED = "unconfirmed"
    NOT_NEEDED = "not_needed"


@dataclass(frozen=True)
class Evidence:
    """Why a bounce was believed or not (stored on the decision)."""

    confirmation: Confirmation
    recheck_status: str | None = None  # the verifier's status for the mailbox, when re-checked
    recheck_detail: str | None = None
    rechecked_at: datetime | None = None
    confirmed_by_bounce_id: int | None = None


_REASON_TEXT = {
    RefundReason.HARD_BOUNCE_IN_WINDOW: "it hard-bounced within {days} days of being accessed",
    RefundReason.NOT_BOUGHT: "the address was not bought with credits",
    RefundReason.MOBILE_NEVER_REFUNDED: "mobile numbers are never refunded",
    RefundReason.NOT_CHARGED: "no credits were charged for it",
    RefundReason.NOT_VERIFIED_WHEN_ACCESSED: "it was not verified when accessed",
    RefundReason.SOFT_BOUNCE: "the bounce was temporary (soft)",
    RefundReason.SENT_AFTER_WINDOW: "it was sent more than {days} days after being accessed",
    RefundReason.ALREADY_REFUNDED: "its credits were already refunded",
    RefundReason.MAILBOX_ACCEPTS_MAIL: "the mailbox accepts mail (checked again after the bounce)",
    RefundReason.BOUNCE_UNCONFIRMED: "the bounce could not be confirmed (the mail server would not tell)",
}


@dataclass(frozen=True)
class RequestFacts:
    """What the refund rule needs to know about the data request that bought the address."""

    id: int
    kind: DataKind
    status: DataRequestStatus
    email_status: str | None
    credits_charged: int
    accessed_at: datetime


@dataclass(frozen=True)
class RefundCase:
    bounce_class: BounceClass
    sent_at: datetime
    request: RequestFacts | None
    already_refunded: bool
    confirmation: Confirmation = Confirmation.CONFIRMED


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: RefundReason
    credits: int


def decide(case: RefundCase) -> Decision:
    """The refund rule, as a pure function (every refusal says which condition failed first)."""

    def refuse(reason: RefundReason) -> Decision:
        return Decision(Outcome.REFUSED, reason, 0)

    request = case.request
    if request is None:
        return refuse(RefundReason.NOT_BOUGHT)
    if request.kind != DataKind.EMAIL:
        return refuse(RefundReason.MOBILE_NEVER_REFUNDED)
    if request.status != DataRequestStatus.CHARGED or request.credits_charged <= 0:
        return refuse(RefundReason.NOT_CHARGED)
    if request.email_status not in CHARGEABLE_EMAIL_STATUSES:
        return refuse(RefundReason.NOT_VERIFIED_WHEN_ACCESSED)
    if case.bounce_class != BounceClass.HARD:
        return refuse(RefundReason.SOFT_BOUNCE)
    if case.confirmation == Confirmation.REFUSED:
        return refuse(RefundReason.MAILBOX_ACCEPTS_MAIL)
    if case.confirmation == Confirmation.UNCONFIRMED:
        return refuse(RefundReason.BOUNCE_UNCONFIRMED)
    if as_utc(case.sent_at) - as_utc(request.accessed_at) > timedelta(days=REFUND_WINDOW_DAYS):
        return refuse(RefundReason.SENT_AFTER_WINDOW)
    if case.already_refunded:
        return refuse(RefundReason.ALREADY_REFUNDED)
    return Decision(Outcome.GRANTED, RefundReason.HARD_BOUNCE_IN_WINDOW, request.credits_charged)


def reason_text(reason: RefundReason) -> str:
    return _REASON_TEXT[RefundReason(reason)].format(days=REFUND_WINDOW_DAYS)


@dataclass(frozen=True)
class DecisionView:
    id: int
    bounce_id: int
    team_id: int
    member_id: int | None
    send_id: int
    data_request_id: int | None
    outcome: Outcome
    reason: RefundReason
    credits: int
    scheduled_refund_id: int | None
    decided_at: datetime
    confirmation: str | None = None
    recheck_status: str | None = None
    confirmed_by_bounce_id: int | None = None


@dataclass(frozen=True)
class BounceOutcome:
    """What processing one bounce did: matched to a send (and decided, or waiting for a re-check),
    or kept as unmatched with the reason."""

    bounce_id: int
    matched: bool
    decision: DecisionView | None
    pending: bool = False  # matched, the re-check could not tell yet: decided on a later pass
    refusal: str | None = None  # why it matched no send (MatchRefusal)


Recheck = Callable[[str], EmailResult]


class Refunds:
    def __init__(self, engine: Engine, ledger: Ledger, *, recheck: Recheck | None = None) -> None:
        """`recheck(address)` probes the mailbox now (the email verifier), never from a cache."""
        self.engine = engine
        self.ledger = ledger
        self.recheck = recheck

    # ---- processing ---------------------------------------------------------------------

    def process_bounce(self, bounce_id: int, *, now: datetime | None = None) -> BounceOutcome:
        """Match one bounce to the send it proves, confirm it, decide its refund. Idempotent; safe
        concurrently."""
        now = as_utc(now or utcnow())
        with read_transaction(self.engine) as conn:
            bounce = conn.execute(select(_B).where(_B.c.id == bounce_id)).one_or_none()
            if bounce is None:
                raise NotFound(f"unknown bounce {bounce_id}")
            if bounce.processed_at is not None:
                return self._outcome(conn, bounce)
            if bounce.next_recheck_at is not None and as_utc(bounce.next_recheck_at) > now:
                return BounceOutcome(bounce_id, True, None, pending=True)
            found = match_send(conn, _claim(bounce))
            case = self._case(conn, bounce, found.send) if isinstance(found, SendMatch) else None
        if not isinstance(found, SendMatch) or case is None:
            return run_write(self.engine, lambda c: self._record_unmatched(c, bounce_id, found, now))
        evidence = self._confirm(bounce, found.send, case, now)
        if evidence is None:
            return run_write(self.engine, lambda c: self._defer(c, bounce_id, now))
        decision = decide(replace(case, confirmation=evidence.confirmation))
        scheduled_id = None
        if decision.outcome == Outcome.GRANTED:
            scheduled_id = self._schedule(bounce, found.send, case, decision, now)
        return run_write(
            self.engine, lambda c: self._record(c, bounce_id, found, case, decision, evidence, scheduled_id, now)
        )

    def _schedule(self, bounce: Any, send: Any, case: RefundCase, decision: Decision, now: datetime) -> int:
        check(case.request is not None, "a granted refund names the data request it refunds")
        return self.ledger.schedule_refund(
            send.team_id,
            decision.credits,
            key=f"bounce-refund:{case.request.id}",
            earned_at=now,
            meta=UsageMeta(
                category=Category.EMAIL,
                member_id=send.member_id,
                action="refund",
                description=f"Refund: {send.recipient} hard-bounced"
                + (f" ({bounce.status_code})" if bounce.status_code else ""),
                data_requested=f"data_request:{case.request.id} email",
            ),
        )

    def _record(
        self,
        conn: Connection,
        bounce_id: int,
        match: SendMatch,
        case: RefundCase,
        decision: Decision,
        evidence: Evidence,
        scheduled_id: int | None,
        now: datetime,
    ) -> BounceOutcome:
        row = conn.execute(select(_B).where(_B.c.id == bounce_id).with_for_update()).one()
        if row.processed_at is not None:
            return self._outcome(conn, row)  # another worker got here first
        final = decision
        request = case.request
        if request is not None:
            conn.execute(select(_DR.c.id).where(_DR.c.id == request.id).with_for_update())
            if final.outcome == Outcome.GRANTED and self._granted(conn, request.id):
                final = Decision(Outcome.REFUSED, RefundReason.ALREADY_REFUNDED, 0)
        send = match.send
        granted = final.outcome == Outcome.GRANTED
        decision_id = conn.execute(
            _insert(self.engine, _D)
            .values(
                bounce_id=bounce_id,
                team_id=send.team_id,
                member_id=send.member_id,
                send_id=send.id,
                data_request_id=request.id if request else None,
                granted_data_request_id=request.id if granted and request else None,
                outcome=final.outcome.value,
                reason=final.reason.value,
                credits=final.credits,
                scheduled_refund_id=scheduled_id if granted else None,
                decided_at=now,
                confirmation=evidence.confirmation.value,
                recheck_status=evidence.recheck_status,
                recheck_detail=(evidence.recheck_detail or None) and evidence.recheck_detail[:500],
                rechecked_at=evidence.rechecked_at,
                confirmed_by_bounce_id=evidence.confirmed_by_bounce_id,
            )
            .returning(_D.c.id)
        ).scalar_one()
        add_notice(
            conn,
            NoticeKind.REFUND_DECISION,
            team_id=send.team_id,
            # The contact's owner hears of it (else who paid, else who sent).
            member_id=notice_member(conn, send.team_id, send.person_id, send.data_request_id, send.member_id),
            payload=_notice_payload(decision_id, final, row, send),
            now=now,
        )
        # Shared data changes only on a confirmed claim, and for the address of the proven send.
        if row.bounce_class == BounceClass.HARD.value and evidence.confirmation == Confirmation.CONFIRMED:
            downgrade_after_hard_bounce(conn, send.recipient, row.reason, now)
        conn.execute(
            update(_B)
            .where(_B.c.id == bounce_id)
            .values(send_id=send.id, match_method=match.method.value, match_refusal=None, processed_at=now)
        )
        return BounceOutcome(bounce_id, True, self._decision(conn, bounce_id))

    def _record_unmatched(
        self, conn: Connection, bounce_id: int, refusal: MatchRefusal, now: datetime
    ) -> BounceOutcome:
        row = conn.execute(select(_B).where(_B.c.id == bounce_id).with_for_update()).one()
        if row.processed_at is not None:
            return self._outcome(conn, row)
        conn.execute(update(_B).where(_B.c.id == bounce_id).values(processed_at=now, match_refusal=refusal.value))
        return BounceOutcome(bounce_id, False, None, refusal=refusal.value)

    def _defer(self, conn: Connection, bounce_id: int, now: datetime) -> BounceOutcome:
        row = conn.execute(select(_B).where(_B.c.id == bounce_id).with_for_update()).one()
        if row.processed_at is not None:
            return self._outcome(conn, row)
        conn.execute(
            update(_B)
            .where(_B.c.id == bounce_id)
            .values(recheck_attempts=row.recheck_attempts + 1, next_recheck_at=now + RECHECK_INTERVAL)
        )
        return BounceOutcome(bounce_id, True, None, pending=True)

    # ---- confirmation -------------------------------------------------------------------------

    def _confirm(self, bounce: Any, send: Any, case: RefundCase, now: datetime) -> Evidence | None:
        """The evidence for (or against) a bounce, by the written rule (module doc). None: not yet
        decidable, re-check later."""
        if bounce.bounce_class != BounceClass.HARD.value:
            return Evidence(Confirmation.NOT_NEEDED)
        would_refund = decide(replace(case, confirmation=Confirmation.CONFIRMED)).outcome == Outcome.GRANTED
        if not would_refund and downgraded_status(bounce.reason) is None:
            return Evidence(Confirmation.NOT_NEEDED)  # it would move neither credits nor shared data
        if self.recheck is None:
            raise RuntimeError("Refunds needs a mailbox re-check (the email verifier) to confirm hard bounces")
        result = self.recheck(send.recipient)
        status = EmailStatus(result.status)
        seen = dict(recheck_status=status.value, recheck_detail=result.detail, rechecked_at=now)
        if status == EmailStatus.INVALID:
            return Evidence(Confirmation.CONFIRMED, **seen)
        if status in CHARGEABLE_EMAIL_STATUSES:
            return Evidence(Confirmation.REFUSED, **seen)
        other = self._independent_bounce(bounce, send)
        if other is not None:
            return Evidence(Confirmation.CONFIRMED, confirmed_by_bounce_id=other, **seen)
        if bounce.recheck_attempts + 1 < MAX_RECHECKS:
            return None
        return Evidence(Confirmation.UNCONFIRMED, **seen)

    def _independent_bounce(self, bounce: Any, send: Any) -> int | None:
        """Another proven hard bounce of the same address, for a send of another team."""
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(_B.c.id)
                .join(_S, or_(_S.c.id == _B.c.proven_send_id, _S.c.id == _B.c.send_id))
                .where(
                    _B.c.id != bounce.id,
                    _B.c.bounce_class == BounceClass.HARD.value,
                    _B.c.recipient == send.recipient,
                    _S.c.recipient == send.recipient,
                    _S.c.team_id != send.team_id,
                    _S.c.status != SendStatus.FAILED.value,
                    _B.c.match_refusal.is_(None),
                    or_(_B.c.team_id.is_(None), _B.c.team_id == _S.c.team_id),
                )
                .order_by(_B.c.id)
                .limit(1)
            ).scalar()
    def process_pending(self, *, now: datetime | None = None, limit: int = 500) -> list[BounceOutcome]:
        """Bounces stored but not yet decided (a worker died mid-way, or intake only stored them)."""
        now = as_utc(now or utcnow())
        with read_transaction(self.engine) as conn:
            ids = conn.execute(
                select(_B.c.id)
                .where(_B.c.processed_at.is_(None), or_(_B.c.next_recheck_at.is_(None), _B.c.next_recheck_at <= now))
                .order_by(_B.c.id)
                .limit(limit)
            ).scalars().all()
        return [self.process_bounce(bounce_id, now=now) for bounce_id in ids]

    # ---- reads ----------------------------------------------------------------------------

    def decisions(self, team_id: int) -> list[DecisionView]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(_D).where(_D.c.team_id == team_id).order_by(_D.c.id)).all()
        return [_decision_view(r) for r in rows]

    def usage_log(
        self,
        team_id: int,
        *,
        include_refunds: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
        member_id: int | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        """The ledger's usage log, plus one row per refund decision when refunds are shown.

        A decision row carries 0 credits (action `refund_scheduled` or `refund_refused`, the reason
        in the description); the credits themselves show as the ledger's refund row when the cycle
        close grants them."""
        rows = self.ledger.usage_log(
            team_id, include_refunds=include_refunds, since=since, until=until, member_id=member_id, limit=limit
        )
        if not include_refunds:
            return rows
        conditions = [_D.c.team_id == team_id]
        if since is not None:
            conditions.append(_D.c.decided_at >= as_utc(since))
        if until is not None:
            conditions.append(_D.c.decided_at < as_utc(until))
        if member_id is not None:
            conditions.append(_D.c.member_id == member_id)
        with read_transaction(self.engine) as conn:
            decisions = conn.execute(
                select(_D, _M.c.email, _S.c.recipient, _S.c.sent_at)
                .outerjoin(_M, _M.c.id == _D.c.member_id)
                .join(_S, _S.c.id == _D.c.send_id)
                .where(and_(*conditions))
                .order_by(_D.c.decided_at.desc(), _D.c.id.desc())
                .limit(limit)
            ).all()
        for d in decisions:
            granted = d.outcome == Outcome.GRANTED.value
            text = reason_text(RefundReason(d.reason))
            description = (
                f"Refund of {d.credits} credit(s) scheduled for the next cycle: {d.recipient}: {text}"
                if granted
                else f"No refund for {d.recipient}: {text}"
            )
            rows.append(
                UsageRow(
                    date=as_utc(d.decided_at),
                    feature=None,
                    action="refund_scheduled" if granted else "refund_refused",
                    description=description[:500],
                    credits=0,
                    data_requested=f"data_request:{d.data_request_id} email" if d.data_request_id else None,
                    user=d.email,
                    category=Category.EMAIL.value,
                    kind=TransferKind.REFUND,
                )
            )
        rows.sort(key=lambda r: r.date, reverse=True)
        return rows[:limit]

    # ---- internals ------------------------------------------------------------------------

    def _case(self, conn: Connection, bounce: Any, send: Any) -> RefundCase:
        request = None
        if send.data_request_id is not None:
            dr = conn.execute(select(_DR).where(_DR.c.id == send.data_request_id)).one()
            if dr.team_id == send.team_id and dr.settled_at is not None:
                request = RequestFacts(
                    id=dr.id,
                    kind=DataKind(dr.kind),
                    status=DataRequestStatus(dr.status),
                    email_status=dr.email_status,
                    credits_charged=dr.credits_charged,
                    accessed_at=as_utc(dr.settled_at),
                )
        return RefundCase(
            bounce_class=BounceClass(bounce.bounce_class),
            sent_at=as_utc(send.sent_at or send.created_at),
            request=request,
            already_refunded=request is not None and self._granted(conn, request.id),
        )

    @staticmethod
    def _granted(conn: Connection, data_request_id: int) -> bool:
        return (
            conn.execute(select(_D.c.id).where(_D.c.granted_data_request_id == data_request_id)).first() is not None
        )

    def _outcome(self, conn: Connection, bounce: Any) -> BounceOutcome:
        return BounceOutcome(
            bounce.id, bounce.send_id is not None, self._decision(conn, bounce.id), refusal=bounce.match_refusal
        )

    @staticmethod
    def _decision(conn: Connection, bounce_id: int) -> DecisionView | None:
        row = conn.execute(select(_D).where(_D.c.bounce_id == bounce_id)).one_or_none()
        return _decision_view(row) if row is not None else None


def _claim(bounce: Any) -> BounceClaim:
    return BounceClaim(
        recipient=bounce.recipient,
        message_id=bounce.message_id,
        proven_send_id=bounce.proven_send_id,
        team_id=bounce.team_id,
    )


def _insert(engine: Engine, table):
    return (sqlite_insert if is_sqlite(engine) else pg_insert)(table)


def _decision_view(row: Any) -> DecisionView:
    return DecisionView(
        id=row.id,
        bounce_id=row.bounce_id,
        team_id=row.team_id,
        member_id=row.member_id,
        send_id=row.send_id,
        data_request_id=row.data_request_id,
        outcome=Outcome(row.outcome),
        reason=RefundReason(row.reason),
        credits=row.credits,
        scheduled_refund_id=row.scheduled_refund_id,
        decided_at=as_utc(row.decided_at),
        confirmation=row.confirmation,
        recheck_status=row.recheck_status,
        confirmed_by_bounce_id=row.confirmed_by_bounce_id,
    )


def _notice_payload(decision_id: int, decision: Decision, bounce: Any, send: Any) -> RefundNotice:
    granted = decision.outcome == Outcome.GRANTED
    why = reason_text(decision.reason)
    status = f" ({bounce.status_code})" if bounce.status_code else ""
    text = (
        f"Your email to {send.recipient} bounced{status}: {decision.credits} credit(s) will be refunded at the "
        f"start of your next billing cycle, because {why}."
        if granted
        else f"Your email to {send.recipient} bounced{status}: no refund, because {why}."
    )
    return RefundNotice(
        decision_id=decision_id,
        outcome=decision.outcome.value,
        reason=decision.reason.value,
        credits=decision.credits,
        recipient=send.recipient,
        message_id=send.message_id,
        data_request_id=send.data_request_id,
        sent_at=as_utc(send.sent_at or send.created_at).isoformat(),
        bounce_class=bounce.bounce_class,
        bounce_status=bounce.status_code,
        text=text,
    )


__all__ = [
    "MAX_RECHECKS",
    "RECHECK_INTERVAL",
    "REFUND_WINDOW_DAYS",
    "BounceOutcome",
    "Confirmation",
    "Evidence",
    "Decision",
    "DecisionView",
    "Outcome",
    "RefundCase",
    "RefundReason",
    "Refunds",
    "RequestFacts",
    "decide",
    "reason_text",
]
