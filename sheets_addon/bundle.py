"""Write the add-on's Apps Script project out with the backend URL filled in, ready for `clasp push`.

The repository's copy (`sheets_addon/apps_script/`) carries the placeholder `__TRIBUTARY_BACKEND_URL__`
in Code.gs and in appsscript.json's `urlFetchWhitelist`; a bundle is that project with the URL of
one Tributary deployment in both places (and `.clasp.json` when a script id is given). Everything is
checked and rendered before the first file is written, and each file is replaced atomically.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import InvalidInput, check

PLACEHOLDER = "__TRIBUTARY_BACKEND_URL__"
PROJECT_DIR = Path(__file__).with_name("apps_script")
# What `clasp push` uploads: the manifest, the server script, the sidebar. Tests stay behind.
PROJECT_FILES = ("appsscript.json", "Code.gs", "Sidebar.html")
CLASP_FILE = ".clasp.json"
# Apps Script ids are URL-safe base64-ish strings (about 57 characters today).
SCRIPT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{10,200}")
# The URL lands in a quoted JavaScript string and in JSON: characters that could end either, and
# whitespace, are refused rather than escaped (no real backend URL has them).
URL_FORBIDDEN_CHARACTERS = re.compile(r"[\s'\"\\<>`{}|^]")
MAX_URL_CHARS = 2000


@dataclass(frozen=True)
class Bundle:
    directory: Path
    backend_url: str
    files: tuple[Path, ...]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def backend_url(raw: str) -> str:
    """The backend URL normalised (no trailing slash), or InvalidInput saying what is wrong with it."""
    where = f"--backend-url {raw!r}"
    if len(raw) > MAX_URL_CHARS or URL_FORBIDDEN_CHARACTERS.search(raw):
        raise InvalidInput(f"{where}: not a URL (no spaces, quotes or brackets)", field="backend_url")
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise InvalidInput(f"{where}: the port is not a number from 1 to 65535", field="backend_url") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"{where}: expected https://host[/path]", field="backend_url")
    if parts.scheme == "http" and not _is_loopback(host):
        raise InvalidInput(
            f"{where}: must use https (Google's servers carry ID and OAuth tokens to it); "
            "plain http is allowed only for a loopback address",
            field="backend_url",
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{where}: must not carry a user name or password", field="backend_url")
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise InvalidInput(f"{where}: must not have a query or a fragment", field="backend_url")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _rendered(url: str, script_id: str | None) -> dict[str, str]:
    code = (PROJECT_DIR / "Code.gs").read_text(encoding="utf-8")
    check(code.count(PLACEHOLDER) == 1, "Code.gs must hold the backend URL placeholder exactly once")
    sidebar = (PROJECT_DIR / "Sidebar.html").read_text(encoding="utf-8")
    check(PLACEHOLDER not in sidebar, "Sidebar.html must not need the backend URL")
    manifest = json.loads((PROJECT_DIR / "appsscript.json").read_text(encoding="utf-8"))
    # Google requires https prefixes with a non-empty path: the API lives under the URL, so "URL/".
    manifest["urlFetchWhitelist"] = [url + "/"]
    files = {
        "appsscript.json": json.dumps(manifest, indent=2) + "\n",
        "Code.gs": code.replace(PLACEHOLDER, url),
        "Sidebar.html": sidebar,
    }
    if script_id is not None:
        files[CLASP_FILE] = json.dumps({"scriptId": script_id, "rootDir": "."}, indent=2) + "\n"
    return files


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(raw_url: str, directory: Path, *, script_id: str | None = None) -> Bundle:
    """Write the project for the backend at `raw_url` into `directory` (created if missing)."""
    url = backend_url(raw_url)
    if script_id is not None and not SCRIPT_ID_PATTERN.fullmatch(script_id):
        raise InvalidInput(
            f"--script-id {script_id!r}: not an Apps Script id (letters, digits, - and _; see the project's "
            "settings page)",
            field="script_id",
        )
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"-o {directory}: exists and is not a directory", field="out")
    files = _rendered(url, script_id)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            _write_atomically(directory / name, text)
    except OSError as exc:
        raise InvalidInput(f"-o {directory}: cannot write the project there: {exc.strerror}", field="out") from exc
    return Bundle(directory=directory, backend_url=url, files=tuple(directory / name for name in files))
