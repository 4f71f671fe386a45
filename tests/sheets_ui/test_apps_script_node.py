"""The Apps Script code's own unit tests (`sheets_addon/apps_script/tests/*.test.js`) under Node's
built-in test runner, so `make test` runs them; each Node test is reported by name on failure."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sheets_addon.bundle import PROJECT_DIR

NODE = shutil.which("node")
NODE_TESTS = sorted((PROJECT_DIR / "tests").glob("*.test.js"))


@pytest.mark.skipif(NODE is None, reason="node is not installed: the Apps Script unit tests need Node 20+ (CI has it)")
def test_apps_script_unit_tests_pass_under_node() -> None:
    assert NODE_TESTS, f"no *.test.js under {PROJECT_DIR / 'tests'}"
    proc = subprocess.run(
        [NODE, "--test", "--test-reporter=tap", *map(str, NODE_TESTS)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
    )
    failed = [line for line in proc.stdout.splitlines() if line.lstrip().startswith("not ok")]
    assert proc.returncode == 0 and not failed, f"{failed}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    passed = [line for line in proc.stdout.splitlines() if line.startswith("ok ")]
    assert len(passed) >= 20, proc.stdout[-2000:]  # the suite ran, not an empty file


def test_node_is_at_least_version_20_when_present() -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, f"node {version}: `node --test` needs Node 20+"

