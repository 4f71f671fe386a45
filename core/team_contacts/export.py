"""Exporting a filter or a list of contacts to CSV, charged net-new per contact.

Two steps. `charge` fixes the selection (its contact ids, in contact_export_item), records the
people exported for the first time (exported_person: the net-new rule, once per team and person)
and charges the plan's export price for those only, all in one transaction under the ledger's wallet
lock: over the spend cap, or without the credits, nothing is recorded and nothing charged. `stream`
then writes exactly the fixed selection, chunk by chunk (constant memory), with the enrichment
CSV's rules: UTF-8 with a BOM (Excel), every cell neutralised against formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Connection, Engine, func, literal, select, update

from core.accounts import Accounts, MemberInfo
from core.enrichment.csv_files import neutralise
from core.errors import InvalidInput, NotFound, TributaryError
from core.ledger import Ledger, UsageMeta
from core.team_contacts import filters as q
from core.team_contacts.models import ContactFilter, ContactView, ExportPreview, ExportResult
from core.team_contacts.service import TC, TeamContacts, insert_ignore, inserted
from storage.db import read_transaction, run_write
from storage.models import ContactExport, ContactExportItem, ExportedPerson
from storage.models.enums import Category, Feature
from storage.timeutil import utcnow

X = ContactExport.__table__
XI = ContactExportItem.__table__
XP = ExportedPerson.__table__

MAX_EXPORT_CONTACTS = 1_000_000
EXPORT_CHUNK_ROWS = 250  # small enough that PostgreSQL probes indexes (2,000 made it hash whole tables)
COLUMNS = (
    "contact_id", "full_name", "title", "company", "domain", "email", "email_status",
    "phones", "phone_line_types", "owner", "source", "saved_at", "linkedin_url", "location",
)  # fmt: skip


class SpendCapExceeded(TributaryError):
    pass


@dataclass(frozen=True)
class ExportCharge:
    export_id: int
    contacts: int
    net_new: int
    credits_charged: int


def csv_cells(v: ContactView) -> list[str]:
    phones = [p for p in v.phones if p.status != "invalid"]
    return [
        str(v.id), v.full_name, v.title or "", v.company or "", v.domain or "", v.email or "", v.email_status.value,
        "; ".join(p.e164 for p in phones), "; ".join(p.line_type or "" for p in phones), v.owner_email or "",
        v.source.value, v.saved_at.isoformat(), v.linkedin_url or "", v.location or "",
    ]  # fmt: skip


class ContactExports:
    def __init__(self, engine: Engine, contacts: TeamContacts, accounts: Accounts, ledger: Ledger) -> None:
        self.engine = engine
        self.contacts = contacts
        self.accounts = accounts
        self.ledger = ledger

    def preview(self, actor: MemberInfo, f: ContactFilter) -> ExportPreview:
        """Exactly what `charge` would charge now for the same filter."""
        f = q.check_filter(f)
        price = self.accounts.team(actor.team_id).plan.price_export_credits
        with read_transaction(self.engine) as conn:
            if f.list_id is not None:
                self.contacts.check_list(conn, actor.team_id, f.list_id)
            ids = q.selected_ids(actor.team_id, f).add_columns(TC.c.person_id).subquery()
            total, new = conn.execute(
                select(
                    func.count(),
                    func.count().filter(
                        ~select(XP.c.person_id)
                        .where(XP.c.team_id == actor.team_id, XP.c.person_id == ids.c.person_id)
                        .exists()
                    ),
                ).select_from(ids)
            ).one()
        return ExportPreview(contacts=total, net_new=new, price_credits=price, credits=new * price)

    def charge(
        self,
        actor: MemberInfo,
        f: ContactFilter,
        *,
        feature: Feature = Feature.CLI,
        max_credits: int | None = None,
        now: datetime | None = None,
    ) -> ExportCharge:
        f = q.check_filter(f)
        if max_credits is not None and max_credits < 0:
            raise InvalidInput("max credits: must not be negative")
        team = self.accounts.team(actor.team_id)
        price = team.plan.price_export_credits
        when = now or utcnow()

        def op(conn: Connection) -> ExportCharge:
            self.ledger.lock_and_sweep(conn, team.id, when)  # the wallet first, as every ledger write
            if f.list_id is not None:
                self.contacts.check_list(conn, team.id, f.list_id)
            export_id = conn.execute(
                X.insert()
                .values(team_id=team.id, member_id=actor.id, feature=Feature(feature).value, contacts=0, net_new=0,
                        credits_charged=0, created_at=when)
                .returning(X.c.id)
            ).scalar_one()  # fmt: skip
            chosen = select(literal(export_id), TC.c.id).select_from(q.from_for(f)).where(*q.conditions(team.id, f))
            contacts = inserted(conn, XI.insert().from_select(["export_id", "contact_id"], chosen))
            if contacts > MAX_EXPORT_CONTACTS:
                raise InvalidInput(f"export: {contacts} contacts, more than {MAX_EXPORT_CONTACTS}; narrow the filter")
            firsts = (
                select(literal(team.id), TC.c.person_id, literal(export_id), literal(when, XP.c.exported_at.type))
                .select_from(XI.join(TC, TC.c.id == XI.c.contact_id))
                .where(XI.c.export_id == export_id)
            )
            insert_firsts = insert_ignore(conn, XP).from_select(
                ["team_id", "person_id", "export_id", "exported_at"], firsts
            )
            net_new = inserted(conn, insert_firsts.on_conflict_do_nothing(index_elements=["team_id", "person_id"]))
            cost = net_new * price
            if max_credits is not None and cost > max_credits:
                raise SpendCapExceeded(
                    f"export: {net_new} new contacts cost {cost} credits, over the cap of {max_credits}"
                )
            transfer_id = None
            if cost > 0:
                meta = UsageMeta(
                    category=Category.EXPORT, feature=Feature(feature), member_id=actor.id, action="export_contacts",
                    description=f"Exported {contacts} contacts ({net_new} new) to CSV",
                    data_requested=f"export:{export_id} contacts:{net_new}",
                )  # fmt: skip
                transfer_id = self.ledger.charge(
                    team.id, cost, key=f"export:{export_id}", meta=meta, now=when, conn=conn
                ).id
            conn.execute(
                update(X).where(X.c.id == export_id).values(
                    contacts=contacts, net_new=net_new, credits_charged=cost, charge_transfer_id=transfer_id
                )
            )  # fmt: skip
            return ExportCharge(export_id, contacts, net_new, cost)

        return run_write(self.engine, op)

    def stream(self, actor: MemberInfo, export_id: int) -> Iterator[bytes]:
        """The CSV of a charged export: a BOM and the header, then one chunk of rows at a time."""
        with read_transaction(self.engine) as conn:
            owner = conn.execute(select(X.c.team_id).where(X.c.id == export_id)).scalar()
        if owner != actor.team_id:
            raise NotFound(f"unknown export {export_id}")
        return (chunk for chunk, _ in self._chunks(export_id))

    def _chunks(self, export_id: int) -> Iterator[tuple[bytes, int]]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        yield "\ufeff".encode() + buffer.getvalue().encode(), 0
        after = 0
        while True:
            with read_transaction(self.engine) as conn:
                # The chunk's ids first (a primary-key range), then their rows by id: joined in one
                # query, PostgreSQL evaluated the best-email subquery for every contact of the team.
                ids = (
                    conn.execute(
                        select(XI.c.contact_id)
                        .where(XI.c.export_id == export_id, XI.c.contact_id > after)
                        .order_by(XI.c.contact_id)
                        .limit(EXPORT_CHUNK_ROWS)
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return
                views = self.contacts.rows_by_ids(conn, ids)
            after = ids[-1]
            if not views:
                continue
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([neutralise(c) for c in csv_cells(v)] for v in views)
            yield buffer.getvalue().encode(), len(views)

    def export(
        self,
        actor: MemberInfo,
        f: ContactFilter,
        out: BinaryIO,
        *,
        feature: Feature = Feature.CLI,
        max_credits: int | None = None,
        now: datetime | None = None,
    ) -> ExportResult:
        charged = self.charge(actor, f, feature=feature, max_credits=max_credits, now=now)
        written = 0
        for chunk, rows in self._chunks(charged.export_id):
            out.write(chunk)
            written += rows
        return ExportResult(charged.export_id, charged.contacts, charged.net_new, charged.credits_charged, written)
