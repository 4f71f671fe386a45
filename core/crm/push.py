"""Push: what Tributary knows, into the properties the admin mapped, without ever overwriting a person.

For each linked contact and mapped field with a value (core/crm/values.py), the decision uses the
CRM's current value and what Tributary last wrote there:
- the CRM already holds that value: nothing;
- Tributary never wrote there: write only into an empty property ("fill what is missing");
- the CRM still holds what Tributary wrote: write (it is ours and out of date);
- anything else means a person edited it after our write: the write yields, for good.
The decision is taken twice: when planning (from the hashes the last read left) and again on the
values a batch read returns just before the batch update, so an edit made during the sync counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from core.crm.connector import ContactUpdate, CrmConnector
from core.crm.fields import PushField, value_hash
from core.crm.records import RecordRow, WriteRow, mark_yielded, record_writes, set_seen
from storage.db import run_write


class Decision(StrEnum):
    WRITE = "write"
    SKIP = "skip"
    YIELD = "yield"


def decide(new_hash: str, current_hash: str, last: WriteRow | None) -> Decision:
    if current_hash == new_hash:
        return Decision.SKIP
    if last is None:
        return Decision.WRITE if current_hash == "" else Decision.SKIP
    if last.yielded:
        return Decision.SKIP
    return Decision.WRITE if current_hash == last.value_hash else Decision.YIELD


@dataclass(frozen=True)
class PlannedUpdate:
    record: RecordRow
    values: dict[str, str]  # CRM property -> value


@dataclass
class PushCounts:
    contacts_updated: int = 0
    values_written: int = 0
    kept_person_edits: int = 0  # values a person edited after our write: left alone
    by_field: dict[str, int] = field(default_factory=dict)


def plan_updates(
    records: Sequence[RecordRow],
    known: Mapping[int, Mapping[PushField, str]],
    field_map: Mapping[str, str],
    writes: Mapping[tuple[int, str], WriteRow],
) -> tuple[list[PlannedUpdate], list[tuple[int, str]]]:
    """The updates the stored hashes call for, and the writes a person has since taken over."""
    planned, yielded = [], []
    for r in records:
        values = {}
        for fld, value in known.get(r.person_id or 0, {}).items():
            prop = field_map.get(fld)
            if prop is None:
                continue
            last = writes.get((r.id, prop))
            decision = decide(value_hash(value), r.seen.get(prop, ""), last)
            if decision is Decision.WRITE:
                values[prop] = value
            elif decision is Decision.YIELD:
                yielded.append((r.id, prop))
        if values:
            planned.append(PlannedUpdate(r, values))
    return planned, yielded


def push_batch(
    engine, crm: CrmConnector, batch: Sequence[PlannedUpdate], writes: Mapping[tuple[int, str], WriteRow],
    counts: PushCounts, field_of: Mapping[str, str],
) -> None:  # fmt: skip
    """Re-read the batch's contacts, decide again on what they hold now, write, record."""
    props = sorted({p for u in batch for p in u.values})
    current = {c.id: c for c in crm.read([u.record.crm_id for u in batch], props)}
    updates, yielded = [], []
    for u in batch:
        now = current.get(u.record.crm_id)
        if now is None:
            continue  # deleted in the CRM meanwhile
        values = {}
        for prop, value in u.values.items():
            decision = decide(value_hash(value), value_hash(now.value(prop)), writes.get((u.record.id, prop)))
            if decision is Decision.WRITE:
                values[prop] = value
            elif decision is Decision.YIELD:
                yielded.append((u.record.id, prop))
        if values:
            updates.append(PlannedUpdate(u.record, values))
    counts.kept_person_edits += len(yielded)
    if yielded:
        run_write(engine, lambda conn: mark_yielded(conn, yielded))
    if not updates:
        return
    done = {c.id: c for c in crm.update([ContactUpdate(u.record.crm_id, u.values) for u in updates])}
    run_write(engine, lambda conn: _record(conn, updates, done))
    for u in updates:
        counts.contacts_updated += 1
        counts.values_written += len(u.values)
        for prop in u.values:
            name = field_of.get(prop, prop)
            counts.by_field[name] = counts.by_field.get(name, 0) + 1


def _record(conn, updates: Sequence[PlannedUpdate], done: Mapping) -> None:
    written, seen_rows = [], []
    for u in updates:
        after = done.get(u.record.crm_id)
        modified = after.modified_ms if after is not None else u.record.modified_ms
        seen = dict(u.record.seen)
        for prop, value in u.values.items():
            written.append((u.record.id, prop, value_hash(value), modified))
            seen[prop] = value_hash(value)
        # Our own write moves the contact's last-modified: remembering it makes the next pull skip
        # the echo instead of reading it back as a change.
        seen_rows.append((u.record.id, seen, modified))
    set_seen(conn, seen_rows)
    record_writes(conn, written)
