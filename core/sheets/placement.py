"""Where each row's result goes when the sheet may have changed since the job read it (pure, no I/O).

A job remembers, per original row, a fingerprint of the row's identifier cells. Before writing it
re-reads the identifier cells and places each result on the row that now holds that fingerprint:
unchanged rows stay, rows moved by a sort, insert or delete follow their identifiers, and anything
edited or ambiguous gets no row (with a reason) rather than risk landing on someone else's row.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Cells of one row are joined with a separator no spreadsheet cell contains in practice.
_SEPARATOR = "\x1f"
FINGERPRINT_BYTES = 16

REASON_CHANGED = "row changed during the job"
REASON_AMBIGUOUS = "row moved during the job and its identifiers now appear on a different number of rows"


def row_fingerprint(identifier_cells: Sequence[str]) -> str:
    """A short hash of a row's identifier cells, equal for cells that differ only in surrounding
    space, letter case or Unicode normalization form."""
    normalized = [unicodedata.normalize("NFC", str(cell)).strip().casefold() for cell in identifier_cells]
    digest = hashlib.blake2b(_SEPARATOR.join(normalized).encode("utf-8"), digest_size=FINGERPRINT_BYTES)
    return digest.hexdigest()


@dataclass(frozen=True)
class Placement:
    """The row a result is written to now, or None and why not."""

    target_row: int | None
    reason: str | None = None


def _by_fingerprint(rows: Mapping[int, str], skip: set[int]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for row in sorted(rows):
        if row not in skip:
            grouped[rows[row]].append(row)
    return grouped


def place_rows(expected: Mapping[int, str], current: Mapping[int, str]) -> dict[int, Placement]:
    """For every original row of `expected` (row -> fingerprint at job start), where its result goes
    given `current` (row -> fingerprint now).

    A row whose position still holds its fingerprint stays. The others move to where their
    fingerprint now is, among the rows not already taken: the k-th moved row of a fingerprint to the
    k-th free row holding it, only when both counts are equal (a sort or a deleted/inserted other
    row keeps them equal; an edit or a new duplicate does not). No two results share a row.
    """
    placements: dict[int, Placement] = {}
    stayed: set[int] = set()
    for row, fingerprint in expected.items():
        if current.get(row) == fingerprint:
            placements[row] = Placement(row)
            stayed.add(row)
    moved = _by_fingerprint(expected, stayed)
    free = _by_fingerprint(current, stayed)
    for fingerprint, originals in moved.items():
        targets = free.get(fingerprint, [])
        if len(targets) == len(originals):
            placements.update((orig, Placement(target)) for orig, target in zip(originals, targets, strict=True))
        else:
            reason = REASON_CHANGED if not targets else REASON_AMBIGUOUS
            placements.update((orig, Placement(None, reason)) for orig in originals)
    return placements
