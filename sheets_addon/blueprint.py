"""The add-on's backend (`/sheets/v1`): a thin Flask blueprint. Each call: verify the Google ID token
(401 if it is not one), find the member (403 "ask your admin to add you"), parse the JSON body, call
core/sheets/service.py once, render JSON; errors are problem+json naming the field (sheets_addon/render.py).
Sheets are read here only for what the sidebar is waiting on (selection, preview, start); results are
written by worker tasks (sheets_addon/tasks.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from apiflask import APIBlueprint
from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from core.errors import TributaryError
from core.services import Services
from core.sheets.identity import GoogleAccount, SheetsCaller
from core.sheets.service import SheetsService
from core.sheets.types import MAPPABLE_FIELDS, SheetGateway
from sheets_addon import render
from sheets_addon.gateway import sheet_opener
from sheets_addon.google_identity import GoogleIdentityVerifier

SHEETS_PREFIX = "/sheets/v1"
MAX_SHEETS_BODY_BYTES = 64 * 1024  # a selection's description and a token: small
log = logging.getLogger("tributary.sheets")
T = TypeVar("T")


class BadBody(TributaryError):
    """The body is not a JSON object, or too large."""

    http_status = 400


def _bearer() -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def create_sheets_blueprint(services: Services) -> Blueprint:
    # An APIBlueprint kept out of the REST API's OpenAPI document: APIFlask reads every blueprint that
    # has a before_request hook while building the document, and a plain Flask Blueprint breaks it.
    bp = APIBlueprint("sheets_v1", __name__, url_prefix=SHEETS_PREFIX, enable_openapi=False)
    settings = services.settings
    verifier = GoogleIdentityVerifier(settings.google_client_id_list(), settings.google_certs_url)

    @bp.before_request
    def authenticate() -> None:
        length = request.content_length
        if length is not None and length > MAX_SHEETS_BODY_BYTES:
            raise BadBody(f"body: larger than {MAX_SHEETS_BODY_BYTES} bytes")
        user = verifier.verify(_bearer())
        account = GoogleAccount(user.email, user.subject, user.hosted_domain, user.name)
        g.sheets_caller = services.sheets.identities.identify(account)
        body = request.get_json(silent=True) if request.data else {}
        if not isinstance(body, dict):
            raise BadBody("body: send a JSON object (Content-Type: application/json)")
        g.sheets_body = body

    @bp.errorhandler(TributaryError)
    def core_error(exc: TributaryError):
        return render.problem(exc)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render.problem(_HttpProblem(exc))

    _add_routes(bp, _Calls(services))
    return bp


class _Calls:
    """What every route needs: the service (with its write task installed), the caller, the body,
    and a sheet opened with the body's OAuth token (closed after the call)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.open_sheet = sheet_opener(services.settings)

    @property
    def sheets(self) -> SheetsService:
        svc = self.services.sheets
        if svc.enqueue_write is None:  # the write task, enqueued on the deployment's queue
            from sheets_addon.tasks import register_sheets_tasks

            svc.enqueue_write = lambda job_id: register_sheets_tasks(self.services.job_queue).write(job_id)
        return svc

    @property
    def caller(self) -> SheetsCaller:
        return g.sheets_caller

    @property
    def body(self) -> dict:
        return g.sheets_body

    def with_sheet(self, spreadsheet_id: str, call: Callable[[SheetGateway], T]) -> T:
        token = render.oauth_token(self.body)
        sheet = self.open_sheet(token, spreadsheet_id, f"member-{self.caller.member.id}")
        try:
            return call(sheet)
        finally:
            sheet.close()


def _add_routes(bp: Blueprint, c: _Calls) -> None:
    @bp.post("/session")
    def session():
        return render.json_response(render.session(c.sheets.session(c.caller)))

    @bp.post("/selection")
    def selection():
        ref = render.sheet_ref(c.body)
        view = c.with_sheet(ref.spreadsheet_id, lambda sheet: c.sheets.selection(c.caller, sheet, ref))
        return render.json_response(render.selection(view, MAPPABLE_FIELDS))

    @bp.post("/preview")
    def preview():
        req = render.job_request(c.body)
        view = c.with_sheet(req.sheet.spreadsheet_id, lambda sheet: c.sheets.preview(c.caller, sheet, req))
        return render.json_response(render.preview(view))

    @bp.post("/jobs")
    def start_job():
        req = render.job_request(c.body)
        token = render.oauth_token(c.body)
        view = c.with_sheet(req.sheet.spreadsheet_id, lambda sheet: c.sheets.submit(c.caller, sheet, req, token))
        return render.json_response(render.job(view), 202)

    @bp.post("/jobs/<int:job_id>/poll")
    def poll(job_id: int):
        token = c.body.get("oauth_token")
        view = c.sheets.poll(c.caller, job_id, token if isinstance(token, str) else None)
        return render.json_response(render.job(view))

    @bp.post("/jobs/<int:job_id>/cancel")
    def cancel(job_id: int):
        return render.json_response(render.job(c.sheets.cancel(c.caller, job_id)))

    @bp.post("/jobs/<int:job_id>/retry")
    def retry(job_id: int):
        token = render.oauth_token(c.body)
        cap = render.max_credits(c.body)
        spreadsheet_id = c.sheets.spreadsheet_of(c.caller, job_id)  # 404 before Google is asked
        view = c.with_sheet(spreadsheet_id, lambda sheet: c.sheets.retry(c.caller, sheet, job_id, token, cap))
        return render.json_response(render.job(view), 202)


class _HttpProblem(TributaryError):
    def __init__(self, exc: HTTPException) -> None:
        super().__init__(exc.description or exc.name)
        self.http_status = exc.code or 500


__all__ = ["SHEETS_PREFIX", "create_sheets_blueprint"]
