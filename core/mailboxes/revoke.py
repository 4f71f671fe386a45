"""Remove from a team's private candidates what only one mailbox supplied (a disconnect).

CandidateSource says, per candidate a mailbox touched, which fields each inflow supplied (as
digests). A candidate nothing else vouches for is deleted; otherwise each field whose current value
only this mailbox supplied is cleared, and a candidate left without an identity is deleted.
Shared rows are not touched: they carry no team, and were shared only once corroborated elsewhere.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from core.contributions import SOURCE_FIELDS, field_digest
from storage.models import CandidateSource, ContactCandidate

_SOURCE = CandidateSource.__table__
_CAND = ContactCandidate.__table__

# Columns cleared with a field (its keys and details go with it).
_CLEARED_WITH = {
    "full_name": {"full_name": None, "first_name": None, "last_name": None, "first_key": "", "last_key": "",
                  "full_key": ""},
    "company": {"company": None, "company_key": ""},
    "phone_e164": {"phone_e164": None, "phone_kind": None, "phone_line_type": None},
}


def mailbox_source(mailbox_id: int) -> str:
    return f"mailbox:{mailbox_id}"


def revoke_source_in(conn: Connection, team_id: int, source: str) -> tuple[int, int]:
    """(candidates deleted, candidates trimmed) of this team for the revoked source."""
    touched = conn.execute(
        select(_SOURCE.c.candidate_id)
        .join(_CAND, _CAND.c.id == _SOURCE.c.candidate_id)
        .where(_SOURCE.c.source == source, _CAND.c.team_id == team_id)
    ).scalars().all()
    deleted = trimmed = 0
    for candidate_id in touched:
        others = [
            r.fields
            for r in conn.execute(select(_SOURCE).where(_SOURCE.c.candidate_id == candidate_id))
            if r.source != source
        ]
        row = conn.execute(select(_CAND).where(_CAND.c.id == candidate_id)).one()
        clear = _fields_only_from_source(row, others)
        left = {k: getattr(row, k) for k in ("email", "linkedin_url", "first_key", "last_key", "domain", "company_key")}
        for name in clear:
            for column, empty in _CLEARED_WITH.get(name, {name: None}).items():
                if column in left:
                    left[column] = empty
        has_identity = left["email"] or left["linkedin_url"] or (
            left["first_key"] and left["last_key"] and (left["domain"] or left["company_key"])
        )
        if not others or not has_identity:
            conn.execute(delete(_SOURCE).where(_SOURCE.c.candidate_id == candidate_id))
            conn.execute(delete(_CAND).where(_CAND.c.id == candidate_id))
            deleted += 1
            continue
        conn.execute(delete(_SOURCE).where(_SOURCE.c.candidate_id == candidate_id, _SOURCE.c.source == source))
        if clear:
            values: dict = {}
            for name in clear:
                values.update(_CLEARED_WITH.get(name, {name: None}))
            conn.execute(update(_CAND).where(_CAND.c.id == candidate_id).values(**values))
            trimmed += 1
    return deleted, trimmed


def _fields_only_from_source(row, others: list[dict]) -> list[str]:
    vouched: dict[str, set[str]] = {}
    for fields in others:
        for name, digest in fields.items():
            vouched.setdefault(name, set()).add(digest)
    return [
        name
        for name in SOURCE_FIELDS
        if getattr(row, name) and field_digest(name, getattr(row, name)) not in vouched.get(name, set())
    ]


__all__ = ["mailbox_source", "revoke_source_in"]
