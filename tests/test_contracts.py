"""The layers are written down as import-linter contracts (pyproject.toml) and `make test` checks
them, then runs the suite on every core."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "web", "bot", "sheets_addon", "core", "storage")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _layers_contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return contract


def test_the_layers_are_written_down() -> None:
    assert _layers_contract()["layers"] == ["cli", "web", "bot | sheets_addon", "core", "storage"]


def _skeleton(tmp_path: Path, imports: dict[str, str]) -> subprocess.CompletedProcess:
    """A tree with our six packages where `imports[package]` is what that package imports, checked
    against the layers contract exactly as pyproject.toml states it."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(imports.get(package, ""))
    contract = _layers_contract()
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_packages =\n" + "".join(f"    {p}\n" for p in PACKAGES)
        + f"\n[importlinter:contract:layers]\nname = {contract['name']}\ntype = layers\nlayers =\n"
        + "".join(f"    {layer}\n" for layer in contract["layers"])
    )
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tmp_path / ".importlinter")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )


ALLOWED = {"cli": "import web\nimport bot\nimport core\n", "web": "import bot\nimport core\nimport storage\n",
           "bot": "import core\nimport storage\n", "core": "import storage\n"}


def test_todays_import_directions_keep_the_layers(tmp_path) -> None:
    result = _skeleton(tmp_path, ALLOWED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("package", "imported"),
    [("core", "web"), ("storage", "core"), ("bot", "sheets_addon"), ("sheets_addon", "bot"), ("web", "cli"),
     ("bot", "web")],
)
def test_an_import_against_the_layers_breaks_the_contract(tmp_path, package, imported) -> None:
    result = _skeleton(tmp_path, {**ALLOWED, package: ALLOWED.get(package, "") + f"import {imported}\n"})
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


def test_make_test_checks_the_contracts_and_runs_on_every_core() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint\n\t\$\(BIN\)/pytest -n auto$", makefile, re.M)
    assert re.search(r"^lint: install\n\t\$\(BIN\)/lint-imports$", makefile, re.M)
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("pytest-xdist") for d in dev)
