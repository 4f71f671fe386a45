"""Core answers as the API's JSON (the shapes in web/api/schemas.py)."""

from __future__ import annotations

from core.api.account import CreditsView, UsagePage
from core.api.people import MatchAnswer, MatchQuery
from core.api.verification import VerifyAnswer
from core.enrichment.estimate import CostEstimate
from core.enrichment.jobs import JobInfo
from core.errors import TributaryError
from core.people.types import EmailFinding, PersonInfo, PhoneFinding
from storage.models.enums import DataKind
from web.api.problems import error_problem_body
from web.api.schemas import MatchIn


def match_query(body: MatchIn) -> MatchQuery:
    return MatchQuery(
        id=body.id,
        email=body.email,
        linkedin_url=body.linkedin_url,
        name=body.name,
        first_name=body.first_name,
        last_name=body.last_name,
        company=body.company,
        domain=body.domain,
        reveal=tuple(DataKind(k) for k in dict.fromkeys(body.reveal)),
    )


def person(p: PersonInfo) -> dict:
    return {
        "id": p.id,
        "name": p.full_name,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "title": p.title,
        "company": p.company,
        "domain": p.domain,
        "location": p.location,
        "linkedin_url": p.linkedin_url,
    }


def email(e: EmailFinding | None) -> dict | None:
    if e is None:
        return None
    checked = e.checked_at.isoformat() if e.checked_at else None
    return {"address": e.address, "status": e.status.value, "reasons": [], "score": e.score, "checked_at": checked}


def phone(p: PhoneFinding | None) -> dict | None:
    if p is None:
        return None
    return {"e164": p.e164, "status": p.status.value, "line_type": p.line_type}


def match_data(answer: MatchAnswer, pointer: str = "") -> dict:
    errors = []
    for item in answer.errors:
        body = error_problem_body(item.error, pointer)
        body["kind"] = item.kind.value
        errors.append(body)
    return {
        "person": person(answer.person),
        "email": email(answer.email),
        "office_phone": phone(answer.office_phone),
        "mobile_phones": [phone(p) for p in answer.mobile_phones],
        "credits_charged": answer.credits_charged,
        "already_accessed": answer.already_accessed,
        "revealed": [k.value for k in answer.revealed],
        "errors": errors,
    }


def bulk(answers: list[MatchAnswer | TributaryError]) -> dict:
    items = []
    for i, answer in enumerate(answers):
        if isinstance(answer, TributaryError):
            items.append({"index": i, "ok": False, "data": None, "error": error_problem_body(answer, f"/people/{i}")})
        else:
            items.append({"index": i, "ok": True, "data": match_data(answer, f"/people/{i}"), "error": None})
    charged = sum(item["data"]["credits_charged"] for item in items if item["ok"])
    ok = sum(1 for item in items if item["ok"])
    return {"data": items, "meta": {"credits_charged": charged, "matched": ok, "failed": len(items) - ok}}


def credits(view: CreditsView) -> dict:
    lots = [
        {
            "id": lot.id,
            "source": lot.source.value,
            "amount_credits": lot.amount_credits,
            "remaining_credits": lot.amount_credits - lot.spent_credits - lot.expired_credits,
            "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        }
        for lot in view.lots
    ]
    data = {
        "available_credits": view.available_credits,
        "held_credits": view.held_credits,
        "lots": lots,
        "cycle_starts_at": view.cycle_starts_at.isoformat(),
        "cycle_ends_at": view.cycle_ends_at.isoformat(),
    }
    return {"data": data, "meta": {}}


def usage(page: UsagePage) -> dict:
    entries = [
        {
            "id": e.id,
            "date": e.date.isoformat(),
            "feature": e.feature,
            "category": e.category,
            "action": e.action,
            "description": e.description,
            "credits": e.credits,
            "data_requested": e.data_requested,
            "user": e.user,
            "refund": e.refund,
        }
        for e in page.entries
    ]
    return {"data": entries, "meta": {"next_cursor": page.next_cursor}}


def job(info: JobInfo) -> dict:
    p = info.progress
    return {
        "id": info.id,
        "status": info.status.value,
        "label": info.label,
        "want_email": info.options.want_email,
        "want_mobile": info.options.want_mobile,
        "max_credits": info.options.max_credits,
        "credits_charged": p.charged_credits,
        "progress": {
            "total_rows": p.total_rows,
            "done_rows": p.done_rows,
            "matched_rows": p.matched_rows,
            "found_rows": p.found_rows,
            "error_rows": p.error_rows,
        },
        "created_at": info.created_at.isoformat(),
        "finished_at": info.finished_at.isoformat() if info.finished_at else None,
    }


def estimate(e: CostEstimate) -> dict:
    return {
        "rows": e.rows,
        "rows_with_errors": e.rows_with_errors,
        "matched_rows": e.matched_rows,
        "distinct_people": e.distinct_people,
        "already_paid_emails": e.already_paid_emails,
        "already_paid_mobiles": e.already_paid_mobiles,
        "max_credits": e.max_credits,
        "expected_credits": e.expected_credits,
    }


def verification(answer: VerifyAnswer) -> dict:
    pairs = zip(answer.results, answer.charged, strict=True)
    items = [dict(result.to_dict(), charged=charged) for result, charged in pairs]
    return {"data": items, "meta": {"credits_charged": answer.credits_charged, "price_credits": answer.price_credits}}
