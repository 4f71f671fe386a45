"""The add-on's backend (`/sheets/v1`): a thin Flask blueprint. Each call: verify the Google ID token
(401 if it is not one), find the member (403 "ask your admin to add you"), parse the JSON body, call
core/sheets/service.py once, render JSON; errors are problem+json naming the field (sheets_addon/render.py).
Sheets are read here only for what the sidebar is waiting on (selection, preview, start); results are
written by worker tasks (sheets_addon/tasks.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apiflask import APIBlueprint
from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from core.errors import TributaryError
from core.services import Services
from core.sheets.identity import GoogleAccount, SheetsCaller
from core.sheets.types import MAPPABLE_FIELDS, SheetGateway
from sheets_addon import render
from sheets_addon.gateway import sheet_opener
from sheets_addon.google_identity import GoogleIdentityVerifier

SHEETS_PREFIX = "/sheets/v1"
MAX_SHEETS_BODY_BYTES = 64 * 1024  # a selection's description and a token: small
log = logging.getLogger("tributary.sheets")


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
    open_sheet = sheet_opener(settings)

    def sheets():
        svc = services.sheets
        if svc.enqueue_write is None:  # the write task, enqueued on the deployment's queue
            from sheets_addon.tasks import register_sheets_tasks

            svc.enqueue_write = lambda job_id: register_sheets_tasks(services.job_queue).write(job_id)
        return svc

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

    def caller() -> SheetsCaller:
        return g.sheets_caller

    def body() -> dict:
        return g.sheets_body

    def sheet_of(ref_body: dict) -> Callable[[], SheetGateway]:
        return lambda: open_sheet(render.oauth_token(ref_body), render.sheet_ref(ref_body).spreadsheet_id,
                                  f"member-{caller().member.id}")

    def with_sheet(call: Callable[[SheetGateway], object]):
        sheet = sheet_of(body())()
        try:
            return call(sheet)
        finally:
            sheet.close()

    @bp.post("/session")
    def session():
        return render.json_response(render.session(sheets().session(caller())))

    @bp.post("/selection")
    def selection():
        ref = render.sheet_ref(body())
        view = with_sheet(lambda sheet: sheets().selection(caller(), sheet, ref))
        return render.json_response(render.selection(view, MAPPABLE_FIELDS))

    @bp.post("/preview")
    def preview():
        req = render.job_request(body())
        return render.json_response(render.preview(with_sheet(lambda sheet: sheets().preview(caller(), sheet, req))))

    @bp.post("/jobs")
    def start_job():
        req = render.job_request(body())
        token = render.oauth_token(body())
        view = with_sheet(lambda sheet: sheets().submit(caller(), sheet, req, token))
        return render.json_response(render.job(view), 202)

    @bp.post("/jobs/<int:job_id>/poll")
    def poll(job_id: int):
        token = body().get("oauth_token")
        view = sheets().poll(caller(), job_id, token if isinstance(token, str) else None)
        return render.json_response(render.job(view))

    @bp.post("/jobs/<int:job_id>/cancel")
    def cancel(job_id: int):
        return render.json_response(render.job(sheets().cancel(caller(), job_id)))

    @bp.post("/jobs/<int:job_id>/retry")
    def retry(job_id: int):
        token = render.oauth_token(body())
        cap = render.max_credits(body())
        old = sheets().job_of(caller(), job_id)  # 404 before any Google call for another team's job
        sj = services.sheets.store.job(old.job_id)
        sheet = open_sheet(token, sj.spreadsheet_id, f"member-{caller().member.id}")
        try:
            view = sheets().retry(caller(), sheet, job_id, token, cap)
        finally:
            sheet.close()
        return render.json_response(render.job(view), 202)

    return bp


class _HttpProblem(TributaryError):
    def __init__(self, exc: HTTPException) -> None:
        super().__init__(exc.description or exc.name)
        self.http_status = exc.code or 500


__all__ = ["SHEETS_PREFIX", "create_sheets_blueprint"]
