"""Team contacts, lists and CSV exports: thin routes over core/api/contacts.py.

The export answers with the CSV itself (text/csv, UTF-8 with a BOM, cells neutralised against
formulas), streamed a chunk at a time; what it charged is in the X-Export-* headers. With an
Idempotency-Key, a retry streams the same export again and charges nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from apiflask import APIBlueprint
from flask import Response, g, request

from core.api.contacts import ApiContacts, ContactQuery
from core.api.idempotency import request_hash
from core.api.service import ApiService
from core.errors import InvalidInput
from core.team_contacts.export import ExportCharge
from core.team_contacts.models import (
    AccountSelection,
    AccountView,
    BulkResult,
    ContactFilter,
    ContactView,
    ListInfo,
    PageRequest,
    Sort,
)
from web.api.schemas import (
    AccountsOut,
    AccountsQuery,
    AccountViewOut,
    AssignAccountsIn,
    AssignIn,
    BulkResultOut,
    ContactFilterIn,
    ContactsOut,
    ContactsQuery,
    ContactViewOut,
    ExportIn,
    ExportPreviewOut,
    ListIn,
    ListsOut,
    ListViewOut,
    SelectionIn,
)

Charging = Callable[..., Response]
CSV_SCHEMA = {"type": "string"}
EXPORT_HEADERS = {
    "X-Export-Id": "the export's id",
    "X-Export-Contacts": "contacts in the file",
    "X-Export-Net-New": "contacts this team exported for the first time (the ones that cost)",
    "X-Credits-Charged": "credits charged (0 on a replay)",
}
EXPORT_RESPONSES = {
    200: {
        "description": "The CSV (UTF-8 with a BOM)",
        "content": {"text/csv": {"schema": CSV_SCHEMA}},
        "headers": {name: {"description": d, "schema": {"type": "integer"}} for name, d in EXPORT_HEADERS.items()},
    },
    403: "Not permitted",
}


def _query(f: ContactFilterIn) -> ContactQuery:
    return ContactQuery(
        email_status=f.email_status,
        has_phone=f.has_phone,
        line_type=f.line_type,
        owner=f.owner,
        account_id=f.account_id,
        company=f.company,
        saved_since=f.saved_since,
        saved_until=f.saved_until,
        source=f.source,
        list_id=f.list_id,
        text=f.q,
        account_owner=f.account_owner,
    )


def contact(v: ContactView) -> dict:
    phones = [{"e164": p.e164, "kind": p.kind, "line_type": p.line_type, "status": p.status} for p in v.phones]
    return {
        "id": v.id, "person_id": v.person_id, "name": v.full_name, "title": v.title, "account_id": v.account_id,
        "company": v.company, "domain": v.domain, "email": v.email, "email_status": v.email_status.value,
        "phones": phones, "owner_member_id": v.owner_member_id, "owner_email": v.owner_email,
        "source": v.source.value, "saved_at": v.saved_at.isoformat(), "linkedin_url": v.linkedin_url,
        "location": v.location, "lists": list(v.lists),
        "job_change_on": v.job_change_on.isoformat() if v.job_change_on else None,
    }  # fmt: skip


def account(a: AccountView) -> dict:
    return {
        "id": a.id, "name": a.name, "domain": a.domain, "owner_member_id": a.owner_member_id,
        "owner_email": a.owner_email, "source": a.source.value, "saved_at": a.saved_at.isoformat(),
        "contacts": a.contacts,
    }  # fmt: skip


def contact_list(info: ListInfo) -> dict:
    return {"id": info.id, "name": info.name, "contacts": info.contacts, "created_at": info.created_at.isoformat()}


def bulk(result: BulkResult) -> dict:
    return {"data": {"matched": result.matched, "changed": result.changed}, "meta": {}}


def _export_filter(contacts: ApiContacts, body: ExportIn) -> ContactFilter:
    if body.list_id is not None and body.filter is not None and body.filter.list_id is not None:
        raise InvalidInput("list_id: give it once (beside the filter or in it)")
    flt = contacts.filter(g.api_caller, _query(body.filter or ContactFilterIn()))
    return flt if body.list_id is None else replace(flt, list_id=body.list_id)


def _csv(contacts: ApiContacts, charge: dict, charged_now: int) -> Response:
    stream = contacts.stream_export(g.api_caller, charge["export_id"])
    response = Response(stream, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="contacts-{charge["export_id"]}.csv"'
    response.headers["X-Export-Id"] = str(charge["export_id"])
    response.headers["X-Export-Contacts"] = str(charge["contacts"])
    response.headers["X-Export-Net-New"] = str(charge["net_new"])
    response.headers["X-Credits-Charged"] = str(charged_now)
    return response


def _charge_body(c: ExportCharge) -> dict:
    return {"export_id": c.export_id, "contacts": c.contacts, "net_new": c.net_new, "credits": c.credits_charged}


def add_contact_routes(bp: APIBlueprint, api: ApiService, charging: Charging) -> None:
    contacts = api.contacts
    if contacts is None:
        return
    _contact_routes(bp, contacts, charging)
    _account_routes(bp, contacts, charging)
    _list_routes(bp, contacts, charging)
    _export_routes(bp, api, contacts, charging)


def _contact_routes(bp: APIBlueprint, contacts: ApiContacts, charging: Charging) -> None:
    @bp.get("/contacts")
    @bp.input(ContactsQuery, location="query", arg_name="query")
    @bp.output(ContactsOut)
    def list_contacts(query: ContactsQuery):
        """The team's contacts matching the filter, a page at a time (`meta.next_cursor`)."""
        flt = contacts.filter(g.api_caller, _query(query))
        page = contacts.find(g.api_caller, flt, PageRequest(query.limit, query.cursor, Sort(query.sort)))
        return {"data": [contact(v) for v in page.contacts], "meta": {"next_cursor": page.next_cursor}}

    @bp.get("/contacts/<int:contact_id>")
    @bp.output(ContactViewOut)
    def show_contact(contact_id: int):
        """One contact of the team, with the lists it is in."""
        return {"data": contact(contacts.show(g.api_caller, contact_id)), "meta": {}}

    @bp.post("/contacts/assign")
    @bp.input(AssignIn, arg_name="body")
    @bp.output(BulkResultOut)
    @bp.doc(responses={403: "Not permitted"})
    def assign_contacts(body: AssignIn):
        """Give contacts (ids or a filter) to an owner. Members give only their own (a filter selects
        only theirs); admins any of the team's."""

        def run() -> dict:
            selection = contacts.selection(g.api_caller, body.contact_ids, _opt_query(body.filter))
            return bulk(contacts.assign(g.api_caller, body.owner, selection))

        return charging(body, run)


def _account_routes(bp: APIBlueprint, contacts: ApiContacts, charging: Charging) -> None:
    @bp.get("/accounts")
    @bp.input(AccountsQuery, location="query", arg_name="query")
    @bp.output(AccountsOut)
    def list_accounts(query: AccountsQuery):
        """The team's accounts (the companies of its contacts) matching the filter, newest saved
        first, a page at a time (`meta.next_cursor`). An account's id is the `account_id` of its
        contacts."""
        flt = contacts.account_filter(g.api_caller, query.owner, query.source, query.q)
        page = contacts.find_accounts(g.api_caller, flt, PageRequest(query.limit, query.cursor))
        return {"data": [account(a) for a in page.accounts], "meta": {"next_cursor": page.next_cursor}}

    @bp.get("/accounts/<int:account_id>")
    @bp.output(AccountViewOut)
    def show_account(account_id: int):
        """One account of the team: owner, source, date saved, contacts there (another team's: 404)."""
        return {"data": account(contacts.show_account(g.api_caller, account_id)), "meta": {}}

    @bp.post("/accounts/assign")
    @bp.input(AssignAccountsIn, arg_name="body")
    @bp.output(BulkResultOut)
    @bp.doc(responses={403: "Not permitted"})
    def assign_accounts(body: AssignAccountsIn):
        """Give accounts (ids or a filter) to an owner. Members give only their own (a filter
        selects only theirs); admins any of the team's. Their contacts keep their owners."""

        def run() -> dict:
            if bool(body.account_ids) == (body.filter is not None):
                raise InvalidInput("account_ids: give account_ids or a filter (one of them)")
            if body.filter is not None:
                f = body.filter
                selection = AccountSelection(filter=contacts.account_filter(g.api_caller, f.owner, f.source, f.q))
            else:
                selection = AccountSelection(account_ids=tuple(body.account_ids or ()))
            return bulk(contacts.assign_accounts(g.api_caller, body.owner, selection))

        return charging(body, run)


def _opt_query(f: ContactFilterIn | None) -> ContactQuery | None:
    return None if f is None else _query(f)


def _list_routes(bp: APIBlueprint, contacts: ApiContacts, charging: Charging) -> None:
    @bp.get("/lists")
    @bp.output(ListsOut)
    def all_lists():
        """The team's lists by name, with their sizes."""
        return {"data": [contact_list(i) for i in contacts.all_lists(g.api_caller)], "meta": {}}

    @bp.post("/lists")
    @bp.input(ListIn, arg_name="body")
    @bp.output(ListViewOut, status_code=201)
    def create_list(body: ListIn):
        """A new empty list (a name taken in the team: 409)."""
        return charging(body, lambda: {"data": contact_list(contacts.create_list(g.api_caller, body.name)),
                                       "meta": {}}, status=201)  # fmt: skip

    @bp.get("/lists/<int:list_id>")
    @bp.output(ListViewOut)
    def show_list(list_id: int):
        """One list of the team (its contacts: `GET /contacts?list_id=`)."""
        return {"data": contact_list(contacts.get_list(g.api_caller, list_id)), "meta": {}}

    @bp.post("/lists/<int:list_id>/add")
    @bp.input(SelectionIn, arg_name="body")
    @bp.output(BulkResultOut)
    def add_to_list(list_id: int, body: SelectionIn):
        """Add contacts (ids or a filter) to the list; those already in it are left."""

        def run() -> dict:
            selection = contacts.selection(g.api_caller, body.contact_ids, _opt_query(body.filter))
            return bulk(contacts.add_to_list(g.api_caller, list_id, selection))

        return charging(body, run)

    @bp.post("/lists/<int:list_id>/remove")
    @bp.input(SelectionIn, arg_name="body")
    @bp.output(BulkResultOut)
    def remove_from_list(list_id: int, body: SelectionIn):
        """Remove contacts (ids or a filter) from the list."""

        def run() -> dict:
            selection = contacts.selection(g.api_caller, body.contact_ids, _opt_query(body.filter))
            return bulk(contacts.remove_from_list(g.api_caller, list_id, selection))

        return charging(body, run)


def _export_routes(bp: APIBlueprint, api: ApiService, contacts: ApiContacts, charging: Charging) -> None:
    @bp.post("/contacts/export/preview")
    @bp.input(ExportIn, arg_name="body")
    @bp.output(ExportPreviewOut)
    def preview_export(body: ExportIn):
        """Exactly what the same export would charge now: the plan's export price per contact this
        team never exported before."""

        def run() -> dict:
            p = contacts.preview(g.api_caller, _export_filter(contacts, body))
            data = {"contacts": p.contacts, "net_new": p.net_new, "price_credits": p.price_credits,
                    "credits": p.credits}  # fmt: skip
            return {"data": data, "meta": {}}

        return charging(body, run)

    @bp.post("/contacts/export")
    @bp.input(ExportIn, arg_name="body")
    @bp.doc(responses=EXPORT_RESPONSES)
    def export_contacts(body: ExportIn):
        """Export a filter or a list to CSV, charged the plan's export price per contact new to the
        team (usage log: feature api, category export); over `max_credits`: 402, nothing charged.
        Charging: Idempotency-Key accepted (a retry streams the same export, charging nothing)."""
        flt = _export_filter(contacts, body)
        key = request.headers.get("Idempotency-Key")
        caller = g.api_caller
        if key is None:
            charged = _charge_body(contacts.charge_export(caller, flt, body.max_credits))
            return _csv(contacts, charged, charged["credits"])
        digest = request_hash(request.method, request.path, body.model_dump(mode="json"))
        claim = api.idempotency.claim(caller.key_id, key, digest)
        if claim.replay is not None:
            response = _csv(contacts, claim.replay.body, 0)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            charged = _charge_body(contacts.charge_export(caller, flt, body.max_credits))
        except BaseException:
            api.idempotency.complete(claim.record_id, 500, {})  # released: a retry may run it again
            raise
        api.idempotency.complete(claim.record_id, 200, charged)
        return _csv(contacts, charged, charged["credits"])
