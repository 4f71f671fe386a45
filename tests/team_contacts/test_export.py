"""Exports: the CSV (BOM, formula-safe, exactly the charged selection), net-new charging once per
contact, an exact preview, the spend cap, and concurrent exports of overlapping selections."""

from __future__ import annotations

import csv
import io
import threading

import pytest

from core.errors import InvalidInput, NotFound
from core.ledger import InsufficientCredits
from core.team_contacts.export import COLUMNS, SpendCapExceeded
from core.team_contacts.models import ContactFilter, Selection
from storage.models.enums import Category, ContactSource, EmailStatus, Feature

INITECH = ContactFilter(company="initech")
ALL = ContactFilter()


def export(world, f, actor=None, **kw):
    out = io.BytesIO()
    result = world.exports.export(actor or world.rep, f, out, **kw)
    return result, out.getvalue()


def rows_of(data: bytes) -> list[dict]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only after a BOM
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def available(world) -> int:
    return world.ledger.balance(world.admin.team_id).available_credits


def test_csv_is_excel_readable_formula_safe_and_has_every_column(world) -> None:
    result, data = export(world, INITECH)
    rows = rows_of(data)
    assert list(rows[0]) == list(COLUMNS)
    by_name = {r["full_name"]: r for r in rows}
    assert set(by_name) == {"Vera Fied", "Cat Chall", '\'=HYPERLINK("x")'}  # neutralised
    vera = by_name["Vera Fied"]
    assert (vera["email"], vera["email_status"], vera["phones"], vera["phone_line_types"]) == (
        "vera@initech.test", "verified", "+14155550100", "fixed_line")  # fmt: skip
    assert (vera["owner"], vera["source"], vera["company"]) == ("rep@acme.test", "slack", "Initech")
    assert by_name['\'=HYPERLINK("x")']["phones"] == ""  # an invalid number is not exported
    assert (result.contacts, result.rows_written) == (3, 3)


def test_each_contact_is_charged_once_and_the_preview_is_exact(world) -> None:
    start = available(world)
    preview = world.exports.preview(world.rep, INITECH)
    assert (preview.contacts, preview.net_new, preview.price_credits, preview.credits) == (3, 3, 2, 6)
    first, _ = export(world, INITECH, feature=Feature.SLACK)
    assert (first.net_new, first.credits_charged) == (3, preview.credits)
    assert available(world) == start - 6
    # Everything again, by another member: only the three never exported cost.
    preview = world.exports.preview(world.rep2, ALL)
    assert (preview.contacts, preview.net_new, preview.credits) == (6, 3, 6)
    second, data = export(world, ALL, actor=world.rep2)
    assert (second.contacts, second.net_new, second.credits_charged, len(rows_of(data))) == (6, 3, 6, 6)
    third, _ = export(world, ALL)
    assert (third.net_new, third.credits_charged) == (0, 0)
    assert available(world) == start - 12
    log = world.ledger.usage_log(world.admin.team_id)
    exports = [r for r in log if r.category == Category.EXPORT.value]
    assert sorted((r.credits, r.user, r.feature) for r in exports) == [
        (6, "rep2@acme.test", "cli"), (6, "rep@acme.test", "slack")]  # fmt: skip


def test_the_spend_cap_and_the_balance_are_respected_with_nothing_recorded(world) -> None:
    start = available(world)
    with pytest.raises(SpendCapExceeded, match="3 new contacts cost 6 credits, over the cap of 5"):
        export(world, INITECH, max_credits=5)
    assert available(world) == start
    assert world.exports.preview(world.rep, INITECH).net_new == 3  # nothing was marked exported
    ok, _ = export(world, INITECH, max_credits=6)
    assert ok.credits_charged == 6
    # A selection costing more than the wallet holds is refused whole.
    for i in range(60):
        from core.people.contacts import NewPerson, add_person

        pid = add_person(world.engine, NewPerson(full_name=f"Extra {i}"))
        world.contacts.save(world.rep, [pid], ContactSource.CSV)
    before = available(world)
    with pytest.raises(InsufficientCredits):
        export(world, ContactFilter(text="extra"))
    assert available(world) == before and world.exports.preview(world.rep, ContactFilter(text="extra")).net_new == 60
    with pytest.raises(InvalidInput, match="max credits"):
        export(world, INITECH, max_credits=-1)


def test_an_export_writes_what_was_charged_even_if_statuses_change_between(world) -> None:
    verified = ContactFilter(email_statuses=(EmailStatus.VERIFIED,))
    charged = world.exports.charge(world.rep, verified)
    from core.bounces.status_downgrade import downgrade_after_hard_bounce
    from storage.db import run_write
    from tests.team_contacts.conftest import T0

    run_write(world.engine, lambda conn: downgrade_after_hard_bounce(conn, "vera@initech.test", None, T0))
    rows = rows_of(b"".join(world.exports.stream(world.rep, charged.export_id)))
    assert [(r["full_name"], r["email_status"]) for r in rows] == [("Vera Fied", "update_required")]


def test_exports_and_lists_are_isolated(world) -> None:
    charged = world.exports.charge(world.rep, ALL)
    with pytest.raises(NotFound, match=f"unknown export {charged.export_id}"):
        world.exports.stream(world.spy, charged.export_id)
    spy, data = export(world, ALL, actor=world.spy)
    assert [r["full_name"] for r in rows_of(data)] == ["Vera Fied"] and spy.contacts == 1
    mine = world.lists.create(world.rep, "mine")
    with pytest.raises(NotFound):
        world.exports.preview(world.spy, ContactFilter(list_id=mine.id))
    with pytest.raises(NotFound):
        export(world, ContactFilter(list_id=mine.id), actor=world.spy)


def test_a_list_exports(world) -> None:
    world.lists.create(world.rep, "Q3")
    world.lists.add(world.rep, "Q3", Selection(contact_ids=(world.contact_ids["mo"], world.contact_ids["lee"])))
    list_id = world.lists.get(world.rep, "Q3").id
    result, data = export(world, ContactFilter(list_id=list_id))
    assert sorted(r["full_name"] for r in rows_of(data)) == ["Lee Kely", "Mo Bile"] and result.credits_charged == 4


def test_concurrent_overlapping_exports_charge_each_contact_once(world) -> None:
    start = available(world)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run(f) -> None:
        barrier.wait()
        try:
            results.append(world.exports.charge(world.rep, f))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in (INITECH, ALL, INITECH, ALL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.net_new for r in results) == 6
    assert sum(r.credits_charged for r in results) == 12 == start - available(world)
