"""Invariants are explicit checks that raise `InvariantViolation`, not `assert` (which `python -O`
strips): no product code asserts, and the money checks still hold under -O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("core", "storage", "bot", "sheets_addon", "web", "cli")


def test_no_product_code_uses_assert() -> None:
    found = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Assert):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], f"use core.errors.check / raise instead of assert: {found}"


OPTIMISED_CASES = {
    # Splitting a charge over lots that do not cover it would spend credits nobody has.
    "lots": (
        "from core.ledger import Ledger\n"
        "Ledger._take([(1, 2), (2, 1)], 5)\n"
    ),
    # A hold that times out before its lookup's lease could be charged for a result never delivered.
    "hold-outlives-lease": (
        "from core.data_requests import DataRequests\n"
        "from core.sources.database import DatabaseSource\n"
        "from storage.db import make_engine\n"
        "e = make_engine('sqlite://')\n"
        "DataRequests(e, DatabaseSource(e), hold_timeout_s=60, lease_s=120)\n"
    ),
}


@pytest.mark.parametrize("case", OPTIMISED_CASES)
def test_money_invariants_hold_under_python_dash_o(case: str) -> None:
    script = OPTIMISED_CASES[case] + "print('went on')\n"
    proc = subprocess.run(
        [sys.executable, "-O", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "went on" not in proc.stdout
    assert "core.errors.InvariantViolation" in proc.stderr, proc.stderr
