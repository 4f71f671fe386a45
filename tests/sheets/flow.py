"""Helpers of the end-to-end Sheets tests: a messy sheet on the loopback Sheets API, the sidebar's
calls, and the checks every run must pass (inputs untouched, outputs on their own rows, money)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.jobs.consumer import start_in_process
from core.sheets.statuses import credits_in
from sheets_addon.tasks import register_sheets_tasks
from tests.google.sheets_server import SheetHandle, SheetsServer
from tests.sheets.world import SheetsWorld, company_of

HEADER = ["First Name", "Last Name", "Company", "Website", "Email", "Notes"]
WIDTH = len(HEADER)
FINAL = ("done", "incomplete", "cancelled", "failed")


def messy_rows(n_people: int, rows: int) -> list[list[str]]:
    """Data rows: people of the seeded world (some twice), blank rows, rows without identifiers,
    unicode names nobody knows, a note that is a formula's text."""
    out = []
    for k in range(rows):
        i = k % n_people
        kind = k % 10
        if kind == 3:
            out.append([""] * WIDTH)  # blank
        elif kind == 6:
            out.append([f"Only{k}", "Name", "", "", "", "no identifier"])
        elif kind == 8:
            out.append(["Zoë", "Łukasiewicz", "Ünïcode GmbH", f"https://zoe{k}.unknown.test", "", "ünïcödé ✓"])
        else:
            company, domain = company_of(i)
            out.append([f"Pat{i}", "Lee", company, f"https://www.{domain}/", "", f"=SUM({k},1)"])
    return out


def expected_credits(rows: list[list[str]]) -> int:
    """What enriching these rows costs on the free plan: 1 per verified email, 8 per mobile, once per
    person (tests/sheets/world.seed_people: even people have an email, every third a mobile)."""
    people = {int(r[0][3:]) for r in rows if r[0].startswith("Pat")}
    return sum((1 if i % 2 == 0 else 0) + (8 if i % 3 == 0 else 0) for i in people)


@dataclass
class Sidebar:
    """What the Apps Script sidebar sends, for one member."""

    world: SheetsWorld
    server: SheetsServer
    sheet: SheetHandle
    email: str = "rep@acme.test"
    poll_s: float = 0.05  # the real sidebar polls every few seconds; tests are quicker

    def __post_init__(self) -> None:
        self.token = self.server.issue_token(self.email, self.sheet.spreadsheet_id)
        self.client = self.world.client()

    def fresh_token(self) -> str:
        self.token = self.server.issue_token(self.email, self.sheet.spreadsheet_id)
        return self.token

    def ref(self, range_a1: str) -> dict:
        return {"spreadsheet_id": self.sheet.spreadsheet_id, "sheet_id": self.sheet.sheet_id,
                "sheet_name": self.sheet.title, "range_a1": range_a1}

    def post(self, path: str, body: dict | None = None, status: int = 200) -> dict:
        answer = self.client.post(f"/sheets/v1{path}", json=body or {}, headers=self.world.headers(self.email))
        assert answer.status_code == status, (answer.status_code, answer.get_json())
        return answer.get_json()

    def job_body(self, range_a1: str, *, mobile: bool = True, max_credits: int | None = None,
                 mapping: dict | None = None) -> dict:
        return {
            "sheet": self.ref(range_a1), "oauth_token": self.token,
            "mapping": mapping or {"first_name": "A", "last_name": "B", "company": "C", "domain": "D", "email": "E"},
            "want": {"email": True, "mobile": mobile}, "output": {"mode": "new_columns"}, "max_credits": max_credits,
        }

    def start(self, range_a1: str, **kw) -> dict:
        return self.post("/jobs", self.job_body(range_a1, **kw), status=202)

    def poll(self, job_id: int, token: str | None = None) -> dict:
        return self.post(f"/jobs/{job_id}/poll", {"oauth_token": token or self.token})

    def until(self, job_id: int, statuses=FINAL, *, timeout_s: float = 120.0, token: bool = True) -> dict:
        tick = threading.Event()
        deadline = time.monotonic() + timeout_s
        while True:
            view = self.poll(job_id) if token else self.post(f"/jobs/{job_id}/poll", {})
            if view["status"] in statuses:
                return view
            assert time.monotonic() < deadline, f"job {job_id} stuck: {view}"
            tick.wait(self.poll_s)


@contextmanager
def workers(world: SheetsWorld, threads: int = 2) -> Iterator[None]:
    jobs = world.services.job_queue
    register_sheets_tasks(jobs)
    jobs.huey.storage.flush_all()
    consumer = start_in_process(jobs, workers=threads, periodic=False)
    try:
        yield
    finally:
        consumer.stop()


def check_outputs_on_their_rows(
    sheet: SheetHandle, rows: int, outputs: dict, typed: frozenset = frozenset()
) -> list[str]:
    """Every email and mobile written sits next to its own person's name (`typed`: values the user
    typed into output cells); returns the status column."""
    values = sheet.values(f"A1:{outputs['status']['letter']}{rows}")
    email_at = _index(outputs["email"]["letter"])
    mobile_at = _index(outputs["mobile"]["letter"]) if "mobile" in outputs else None
    status_at = _index(outputs["status"]["letter"])
    statuses = []
    for line in values[1:]:
        line = line + [""] * (status_at + 1 - len(line))
        first, email = line[0], line[email_at]
        if email:
            assert email == f"{first.lower()}.lee@{company_of(int(first[3:]))[1]}", (first, email)
        if mobile_at is not None and line[mobile_at] and line[mobile_at] not in typed:
            i = int(first[3:])
            assert line[mobile_at] == f"+1415555{1000 + i:04d}", (first, line[mobile_at])
        if not any(line[:WIDTH]):
            assert not any(line[WIDTH:]), f"a blank row got output: {line}"
        statuses.append(line[status_at])
    return statuses


def status_credits(statuses: list[str]) -> int:
    return sum(credits_in(s) for s in statuses)


def _index(letter: str) -> int:
    return ord(letter) - ord("A")
