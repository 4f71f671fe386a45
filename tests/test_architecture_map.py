"""README's architecture map names every package and module, and nothing that does not exist.

The map is the newcomer's way in; a module missing from it (or a stale line about a module that
moved) is how the house got unclear before.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "storage", "bot", "sheets_addon", "web", "cli", "demo")
MAP_HEADING = "### Module map"


def _map_text() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(MAP_HEADING)
    end = readme.find("\n## ", start)
    return readme[start : end if end != -1 else None]


def _modules() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or path.name == "__init__.py":
                continue
            found.add(rel.as_posix())
        for folder in (ROOT / package).rglob("__init__.py"):
            rel = folder.parent.relative_to(ROOT)
            if "migrations" not in rel.parts:
                found.add(rel.as_posix() + "/")
    return found


def _listed() -> set[str]:
    return set(re.findall(r"^- `([^`]+)`", _map_text(), re.M))


def test_every_package_and_module_is_in_the_map() -> None:
    missing = sorted(_modules() - _listed())
    assert not missing, f"README's module map does not mention: {missing}"


def test_the_map_names_nothing_that_does_not_exist() -> None:
    stale = sorted(p for p in _listed() if not (ROOT / p.rstrip("/")).exists())
    assert not stale, f"README's module map names paths that do not exist: {stale}"


def test_each_line_says_what_the_module_is_for() -> None:
    bare = [line for line in _map_text().splitlines() if line.startswith("- `") and not re.search(r"` — \S", line)]
    assert not bare, f"map lines without a description: {bare}"
