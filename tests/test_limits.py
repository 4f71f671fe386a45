"""Limits are named once, with their unit, and the tables agree with them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from storage import limits
from storage.models import (
    CompanyNameKey,
    EmailSend,
    EnrichmentJob,
    LedgerRejection,
    LedgerTransfer,
    PersonNameKey,
    ScheduledRefund,
)

ROOT = Path(__file__).resolve().parents[1]

COLUMNS = [
    (LedgerTransfer, "description", limits.MAX_TEXT_CHARS),
    (LedgerTransfer, "data_requested", limits.MAX_TEXT_CHARS),
    (ScheduledRefund, "description", limits.MAX_TEXT_CHARS),
    (EmailSend, "error", limits.MAX_TEXT_CHARS),
    (LedgerTransfer, "action", limits.MAX_ACTION_CHARS),
    (LedgerRejection, "reason", limits.MAX_ACTION_CHARS),
    (LedgerTransfer, "body_hash", limits.MAX_HEX_DIGEST_CHARS),
    (EnrichmentJob, "input_fingerprint", limits.MAX_HEX_DIGEST_CHARS),
    (EnrichmentJob, "label", limits.MAX_NAME_CHARS),
    (PersonNameKey, "full_key", limits.MAX_NAME_CHARS),
    (PersonNameKey, "first_key", limits.MAX_NAME_PART_CHARS),
    (PersonNameKey, "last_key", limits.MAX_NAME_PART_CHARS),
    (CompanyNameKey, "name_key", limits.MAX_NAME_CHARS),
]


@pytest.mark.parametrize(("model", "column", "width"), COLUMNS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_named_widths_are_the_widths_of_the_columns_they_fill(model, column, width) -> None:
    assert model.__table__.c[column].type.length == width


# Bounce intake and refunds are being reworked on another branch; their truncations follow there.
NOT_YET = {"core/bounces/intake.py", "core/bounces/webhook.py", "core/bounces/parse.py", "core/bounces/refunds.py"}


def test_core_truncates_to_named_widths_not_to_bare_numbers() -> None:
    widths = {limits.MAX_TEXT_CHARS, limits.MAX_NAME_CHARS, limits.MAX_NAME_PART_CHARS, limits.MAX_ACTION_CHARS}
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative in NOT_YET or path.name.startswith("demo"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), relative)):
            if isinstance(node, ast.Slice) and isinstance(node.upper, ast.Constant) and node.upper.value in widths:
                found.append(f"{relative}:{node.lineno} [:{node.upper.value}]")
            is_limit = isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "limit"
            literal_rows = [a.value for a in node.args if isinstance(a, ast.Constant)] if is_limit else []
            if is_limit and any(isinstance(v, int) and v > 1 for v in literal_rows):
                found.append(f"{relative}:{node.lineno} .limit({node.args[0].value})")  # rows: a MAX_..._ROWS
    assert found == [], f"name these limits (storage/limits.py or a MAX_..._ROWS constant): {found}"
