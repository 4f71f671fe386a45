"""The API reference page renders in a real browser with nothing from outside loopback (no CDN)."""

from __future__ import annotations

from pathlib import Path

from storage.migrate import upgrade
from tests.api.conftest import make_world
from tests.sheets_ui.harness import chromium_page, require_browser_tools, serve_wsgi
from web.app import create_app

RENDER_TIMEOUT_MS = 30_000


def test_api_docs_render_offline_in_chromium(tmp_path: Path) -> None:
    require_browser_tools()
    url = f"sqlite:///{tmp_path / 'docs.db'}"  # the page reads no data: one database is enough
    upgrade(url)
    world = make_world(url)
    with serve_wsgi(create_app(world.services)) as base_url, chromium_page(width=1280, height=1000) as page:
        page.goto(f"{base_url}/api/docs")
        # Swagger UI draws one block per operation once it has loaded and parsed the OpenAPI 3.1 document.
        page.wait_for_selector(".opblock", timeout=RENDER_TIMEOUT_MS)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=False)
        print(f"screenshot: {tmp_path / 'api-docs.png'}")
        errors = page.locator(".errors-wrapper").count()
        blocked = list(page.blocked)
    assert any("/api/v1/people/match" in p.replace("\u200b", "") for p in paths), paths[:10]
    assert errors == 0, "Swagger UI reported errors in the OpenAPI document"
    assert blocked == [], f"the page tried to load from outside: {blocked}"
