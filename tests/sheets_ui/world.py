"""The backend the sidebar's browser test talks to: the one Flask app (sheets blueprint included) on
loopback, a real huey consumer, Google's certificates and the Sheets API on loopback, and a team
whose member has a Google account and a sheet of leads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from core.jobs.consumer import start_in_process
from core.secrets import generate_key
from core.services import Services
from core.settings import Settings
from sheets_addon.bundle import write_bundle
from sheets_addon.tasks import register_sheets_tasks
from tests.api.conftest import seed_people
from tests.google.identity import TEST_CLIENT_ID, GoogleCertsServer
from tests.google.sheets_server import SheetHandle, SheetsServer
from tests.sheets_ui.harness import SheetUser, serve_wsgi
from web.app import create_app

MEMBER_EMAIL = "maria@acme.test"
OUTSIDER_EMAIL = "stranger@gmail.test"
# "Firm" is no header name Tributary recognises: the test maps it to Company by hand.
LEADS = [
    ["First name", "Last name", "Firm", "Email", "Notes"],
    ["Jane", "Doe", "Acme Corp", "", "met at the fair"],
    ["Ravi", "Patel", "Globex", "", ""],
    ["No", "Body", "Nowhere", "", "VIP"],
    ["", "", "", "", "a row without identifiers"],
]


@dataclass
class SidebarWorld:
    services: Services
    backend_url: str
    bundle_dir: Path
    certs: GoogleCertsServer
    sheets: SheetsServer
    sheet: SheetHandle
    oauth_token: str
    start_workers: Callable[[], None]  # once, when the world was made with workers=False

    def user(self, email: str = MEMBER_EMAIL, range_a1: str | None = "A1:E5") -> SheetUser:
        """What Apps Script knows at the member's sheet: the selection and fresh tokens."""
        return SheetUser(
            spreadsheetId=self.sheet.spreadsheet_id,
            sheetId=self.sheet.sheet_id,
            sheetName=self.sheet.title,
            rangeA1=range_a1,
            identityToken=self.certs.mint_id_token(email, name="Maria Lopez"),
            oauthToken=self.oauth_token,
        )


def _settings(db_url: str, scratch: Path, certs: GoogleCertsServer, sheets: SheetsServer, **extra) -> Settings:
    return Settings(
        **extra,
        database_url=db_url,
        huey_sqlite_path=str(scratch / "huey.db"),
        api_job_dir=str(scratch / "jobs"),
        # Nothing may reach the real internet: verification points at a closed loopback port.
        verify_dns_nameservers=["127.0.0.1"],
        verify_dns_port=9,
        verify_smtp_port=9,
        google_client_ids=TEST_CLIENT_ID,
        google_certs_url=certs.certs_url,
        sheets_api_url=sheets.base_url,
        secret_keys=SecretStr(generate_key()),  # OAuth tokens are kept encrypted while a job runs
    )


@contextmanager
def sidebar_world(db_url: str, scratch: Path, *, workers: bool = True, **settings) -> Iterator[SidebarWorld]:
    """The world; `workers=False`: no consumer until `start_workers()`, so a job waits in the queue;
    `settings`: more backend settings (e.g. `sheets_max_rows`)."""
    with ExitStack() as stack:
        certs = stack.enter_context(GoogleCertsServer())
        sheets = stack.enter_context(SheetsServer())
        services = Services.from_settings(_settings(db_url, scratch, certs, sheets, **settings))
        stack.callback(services.engine.dispose)
        services.accounts.create_team("acme", plan="free")  # 100 credits; email 1, mobile 8
        services.accounts.add_member("acme", MEMBER_EMAIL)
        seed_people(services)
        sheet = sheets.create_sheet(LEADS, title="Leads")
        token = sheets.issue_token(MEMBER_EMAIL, sheet.spreadsheet_id)
        register_sheets_tasks(services.job_queue)
        def start_workers() -> None:
            consumer = start_in_process(services.job_queue, workers=2, periodic=False)
            stack.callback(consumer.stop)

        if workers:
            start_workers()
        backend_url = stack.enter_context(serve_wsgi(create_app(services)))
        bundle = write_bundle(backend_url, scratch / "bundle")
        yield SidebarWorld(services, backend_url, bundle.directory, certs, sheets, sheet, token, start_workers)


__all__ = ["LEADS", "MEMBER_EMAIL", "OUTSIDER_EMAIL", "SidebarWorld", "sidebar_world"]
