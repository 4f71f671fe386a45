"""`tributary sheets-addon bundle`: the Apps Script project written out with the backend URL filled in,
and every bad URL, script id or output folder refused with exit 2 and one line, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidInput
from sheets_addon.bundle import PLACEHOLDER, PROJECT_DIR, backend_url, write_bundle

ROOT = Path(__file__).resolve().parents[2]
SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/script.container.ui",
    "https://www.googleapis.com/auth/script.external_request",
]
SCRIPT_ID = "1x2Y3z_AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789abcdefghijk"


def _tributary(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )


def test_bundle_fills_the_url_into_code_and_allowlist_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "addon"
    proc = _tributary("sheets-addon", "bundle", "--backend-url", "https://tributary.acme.test/", "-o", str(out),
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "clasp push" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["Code.gs", "Sidebar.html", "appsscript.json"]  # no .clasp.json
    code = (out / "Code.gs").read_text(encoding="utf-8")
    assert PLACEHOLDER not in code
    assert "var TRIBUTARY_BACKEND_URL = 'https://tributary.acme.test';" in code
    # Apart from the URL the script is the repository's, byte for byte.
    assert code.replace("https://tributary.acme.test", PLACEHOLDER) == (PROJECT_DIR / "Code.gs").read_text("utf-8")
    assert (out / "Sidebar.html").read_bytes() == (PROJECT_DIR / "Sidebar.html").read_bytes()
    manifest = json.loads((out / "appsscript.json").read_text(encoding="utf-8"))
    assert manifest["urlFetchWhitelist"] == ["https://tributary.acme.test/"]
    assert manifest["oauthScopes"] == SCOPES
    assert not any(scope.endswith(".currentonly") for scope in manifest["oauthScopes"])  # REST API refuses them


def test_script_id_writes_clasp_json_and_a_rerun_overwrites_only_the_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    write_bundle("https://a.example.test", tmp_path)
    bundle = write_bundle("https://b.example.test/tributary", tmp_path, script_id=SCRIPT_ID)
    assert json.loads((tmp_path / ".clasp.json").read_text()) == {"scriptId": SCRIPT_ID, "rootDir": "."}
    assert bundle.backend_url == "https://b.example.test/tributary"
    assert "'https://b.example.test/tributary'" in (tmp_path / "Code.gs").read_text()
    assert json.loads((tmp_path / "appsscript.json").read_text())["urlFetchWhitelist"] == [
        "https://b.example.test/tributary/"
    ]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://tributary.acme.test", "https://tributary.acme.test"),
        ("https://tributary.acme.test:8443/base/", "https://tributary.acme.test:8443/base"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://localhost:5000/", "http://localhost:5000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_good_urls_are_normalised(raw: str, normalised: str) -> None:
    assert backend_url(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("http://tributary.acme.test", "must use https"),
        ("http://10.0.0.5:5000", "must use https"),
        ("ftp://tributary.acme.test", "expected https://host[/path]"),
        ("tributary.acme.test", "expected https://host[/path]"),
        ("https://", "expected https://host[/path]"),
        ("https://user:pw@tributary.acme.test", "must not carry a user name or password"),
        ("https://tributary.acme.test/?x=1", "must not have a query or a fragment"),
        ("https://tributary.acme.test/#top", "must not have a query or a fragment"),
        ("https://tributary.acme.test/'+x+'", "not a URL"),
        ("https://tributary.acme.test/ a", "not a URL"),
        ("https://tributary.acme.test:99999", "the port is not a number"),
    ],
)
def test_bad_urls_say_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=r"--backend-url .*" + says.replace("[", r"\[").replace("]", r"\]")):
        backend_url(raw)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--backend-url", "http://tributary.acme.test"], "--backend-url 'http://tributary.acme.test': must use https"),
        (["--backend-url", "https://ok.test", "--script-id", "x y"], "--script-id 'x y': not an Apps Script id"),
        (["--backend-url", "https://ok.test", "-o", "a-file"], "exists and is not a directory"),
        ([], "Missing option '--backend-url'"),
    ],
)
def test_bad_invocations_exit_2_with_one_line_and_write_nothing(tmp_path: Path, args: list[str], named: str) -> None:
    (tmp_path / "a-file").write_text("")
    out_args = [] if "-o" in args else ["-o", "out"]
    proc = _tributary("sheets-addon", "bundle", *args, *out_args, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
