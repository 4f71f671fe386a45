"""Phone verification: real numbering plans through phonenumbers' own example numbers.

The example numbers come from the installed metadata, so a metadata update cannot make these
tests stale; what is asserted exactly is our reading of them (status, line type, region, kind).
"""

from __future__ import annotations

import json
import sys

import phonenumbers
import pytest
import typer
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from cli import errors as cli_errors
from cli import phone as phone_cli
from core.errors import InvalidInput
from core.verify.phone import (
    LIVENESS_NOTE,
    MAX_INPUT_LENGTH,
    LineType,
    PhoneResult,
    normalise_region,
    verify_phone,
    verify_phones,
)
from storage.models.enums import PhoneKind, PhoneStatus


def example(region: str, number_type: int = PhoneNumberType.FIXED_LINE) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, number_type)
    assert number is not None, f"no example for {region} type {number_type}"
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def national(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


# (region, phonenumbers type, expected line type, expected kind, expected kind basis)
LINE_TYPE_CASES = [
    ("GB", PhoneNumberType.MOBILE, LineType.MOBILE, PhoneKind.MOBILE, "line_type"),
    ("DE", PhoneNumberType.MOBILE, LineType.MOBILE, PhoneKind.MOBILE, "line_type"),
    ("FR", PhoneNumberType.MOBILE, LineType.MOBILE, PhoneKind.MOBILE, "line_type"),
    ("IN", PhoneNumberType.MOBILE, LineType.MOBILE, PhoneKind.MOBILE, "line_type"),
    ("GB", PhoneNumberType.FIXED_LINE, LineType.FIXED_LINE, PhoneKind.OFFICE, "line_type"),
    ("DE", PhoneNumberType.FIXED_LINE, LineType.FIXED_LINE, PhoneKind.OFFICE, "line_type"),
    ("FR", PhoneNumberType.FIXED_LINE, LineType.FIXED_LINE, PhoneKind.OFFICE, "line_type"),
    # NANP cannot tell fixed from mobile: US example "mobile" and "fixed line" are both ambiguous.
    ("US", PhoneNumberType.MOBILE, LineType.FIXED_LINE_OR_MOBILE, PhoneKind.OFFICE, "default"),
    ("US", PhoneNumberType.FIXED_LINE, LineType.FIXED_LINE_OR_MOBILE, PhoneKind.OFFICE, "default"),
    ("US", PhoneNumberType.TOLL_FREE, LineType.TOLL_FREE, PhoneKind.OFFICE, "line_type"),
    ("US", PhoneNumberType.PREMIUM_RATE, LineType.PREMIUM_RATE, PhoneKind.OFFICE, "line_type"),
    ("US", PhoneNumberType.PERSONAL_NUMBER, LineType.PERSONAL_NUMBER, PhoneKind.OFFICE, "line_type"),
    ("GB", PhoneNumberType.VOIP, LineType.VOIP, PhoneKind.OFFICE, "line_type"),
    ("GB", PhoneNumberType.PAGER, LineType.PAGER, PhoneKind.OFFICE, "line_type"),
    ("GB", PhoneNumberType.UAN, LineType.UAN, PhoneKind.OFFICE, "line_type"),
    ("FR", PhoneNumberType.SHARED_COST, LineType.SHARED_COST, PhoneKind.OFFICE, "line_type"),
    ("DE", PhoneNumberType.VOICEMAIL, LineType.VOICEMAIL, PhoneKind.OFFICE, "line_type"),
    ("IN", PhoneNumberType.TOLL_FREE, LineType.TOLL_FREE, PhoneKind.OFFICE, "line_type"),
]


@pytest.mark.parametrize(("region", "number_type", "line_type", "kind", "basis"), LINE_TYPE_CASES)
def test_line_types_from_international_form(
    region: str, number_type: int, line_type: LineType, kind: PhoneKind, basis: str
) -> None:
    number = example(region, number_type)
    written = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)

    result = verify_phone(written)

    assert result.status is PhoneStatus.VALID
    assert result.reason is None
    assert result.e164 == e164(number)
    assert result.international == written
    assert result.region == region
    assert result.country_code == number.country_code
    assert result.line_type is line_type
    assert result.kind is kind
    assert result.kind_basis == basis
    assert result.liveness_checked is False
    assert result.note == LIVENESS_NOTE


@pytest.mark.parametrize("region", ["US", "GB", "DE", "FR", "IN", "JP", "BR", "AU"])
def test_national_form_read_in_default_region(region: str) -> None:
    number = example(region, PhoneNumberType.MOBILE)

    result = verify_phone(national(number), default_region=region)

    assert (result.status, result.e164, result.region) == (PhoneStatus.VALID, e164(number), region)


def test_default_region_does_not_override_an_explicit_country_code() -> None:
    gb_mobile = example("GB", PhoneNumberType.MOBILE)

    result = verify_phone(e164(gb_mobile), default_region="US")

    assert (result.region, result.e164, result.line_type) == ("GB", e164(gb_mobile), LineType.MOBILE)


def test_same_digits_read_differently_per_region() -> None:
    de_fixed = example("DE", PhoneNumberType.FIXED_LINE)
    written = national(de_fixed)

    in_germany = verify_phone(written, default_region="de")  # case-insensitive region
    in_us = verify_phone(written, default_region="US")

    assert (in_germany.status, in_germany.region, in_germany.e164) == (PhoneStatus.VALID, "DE", e164(de_fixed))
    assert in_us.status is PhoneStatus.INVALID
    assert in_us.e164 is None


def test_uk_alias_and_unknown_region() -> None:
    assert normalise_region("uk") == "GB"
    assert normalise_region(" fr ") == "FR"
    assert normalise_region(None) is None
    assert normalise_region("") is None
    with pytest.raises(InvalidInput, match="unknown region code 'XX'"):
        normalise_region("XX")
    with pytest.raises(InvalidInput):
        verify_phones(["+1 201 555 0123"], "Germany")


def test_national_number_without_any_region_is_unknown_not_invalid() -> None:
    written = national(example("DE", PhoneNumberType.FIXED_LINE))

    result = verify_phone(written)

    assert result.status is PhoneStatus.UNKNOWN
    assert result.reason == "region_unknown"
    assert (result.e164, result.line_type, result.kind) == (None, None, None)


def test_mobile_carrier_where_known() -> None:
    gb_mobile = example("GB", PhoneNumberType.MOBILE)
    expected = phonenumbers.carrier.name_for_number(gb_mobile, "en")
    assert expected  # the metadata knows the UK example range's original carrier

    assert verify_phone(e164(gb_mobile)).carrier == expected
    assert verify_phone(e164(example("GB", PhoneNumberType.FIXED_LINE))).carrier is None


def test_kind_hint_decides_only_ambiguous_numbers() -> None:
    us = e164(example("US", PhoneNumberType.MOBILE))
    gb_fixed = e164(example("GB", PhoneNumberType.FIXED_LINE))
    gb_mobile = e164(example("GB", PhoneNumberType.MOBILE))

    assert (verify_phone(us, kind_hint="mobile").kind, verify_phone(us, kind_hint="mobile").kind_basis) == (
        PhoneKind.MOBILE,
        "hint",
    )
    assert verify_phone(us, kind_hint=PhoneKind.OFFICE).kind is PhoneKind.OFFICE
    # Metadata that is definite wins over the source's label.
    assert verify_phone(gb_fixed, kind_hint="mobile").kind is PhoneKind.OFFICE
    assert verify_phone(gb_mobile, kind_hint="office").kind is PhoneKind.MOBILE


def test_non_geographic_number() -> None:
    number = phonenumbers.example_number_for_non_geo_entity(800)

    result = verify_phone(e164(number))

    assert (result.status, result.region, result.line_type, result.kind) == (
        PhoneStatus.VALID,
        "001",
        LineType.TOLL_FREE,
        PhoneKind.OFFICE,
    )


def test_extension_is_kept() -> None:
    number = example("US", PhoneNumberType.FIXED_LINE)

    for written in (f"{e164(number)} ext. 204", f"{e164(number)} x204", f"{national(number)}, #204"):
        result = verify_phone(written, "US")
        assert (result.status, result.e164, result.extension) == (PhoneStatus.VALID, e164(number), "204"), written


def test_parseable_but_not_valid() -> None:
    fixed = e164(example("FR", PhoneNumberType.FIXED_LINE))  # France: always 9 national digits

    too_short = verify_phone(fixed[:-3])
    too_long = verify_phone(fixed + "12345")
    unallocated = verify_phone("+1 200 555 0100")  # NANP area code 200 is not assigned

    assert (too_short.status, too_short.reason) == (PhoneStatus.INVALID, "too_short")
    assert (too_long.status, too_long.reason) == (PhoneStatus.INVALID, "too_long")
    assert (unallocated.status, unallocated.reason) == (PhoneStatus.INVALID, "not_valid_for_region")
    assert unallocated.kind is None and unallocated.e164 is None


BAD_INPUTS = [
    ("", "empty"),
    ("   ", "empty"),
    ("+" + "1" * MAX_INPUT_LENGTH, "too_long"),
    ("1-800-FLOWERS", "letters"),
    ("call me maybe", "letters"),
    ("+44 20 7946\r\n0958", "control_characters"),
    ("+44\x0020 7946 0958", "control_characters"),
    ("+44 20 7946 0958\u200b", "control_characters"),
    ("+999 1234 5678", "invalid_country_code"),
    ("----", "not_a_number"),
    ("+44 20 7946 0958 <>", "not_a_number"),
    ("12", "too_short"),
    ("1234567890123456789", "too_long"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_INPUTS)
def test_malformed_input_is_a_per_item_invalid_result(raw: str, reason: str) -> None:
    result = verify_phone(raw)

    assert (result.input, result.status, result.reason) == (raw, PhoneStatus.INVALID, reason)
    assert result.detail
    assert (result.e164, result.line_type, result.kind) == (None, None, None)


def test_batch_keeps_order_and_isolates_bad_items() -> None:
    good_gb = example("GB", PhoneNumberType.MOBILE)
    good_in = example("IN", PhoneNumberType.MOBILE)
    items: list[object] = [e164(good_gb), "", None, "x" * 300, national(good_in), 12345, "abc\n"]

    results = verify_phones(items, default_region="IN")

    assert [r.status for r in results] == [
        PhoneStatus.VALID,
        PhoneStatus.INVALID,
        PhoneStatus.INVALID,
        PhoneStatus.INVALID,
        PhoneStatus.VALID,
        PhoneStatus.INVALID,
        PhoneStatus.INVALID,
    ]
    assert [r.reason for r in results] == [
        None,
        "empty",
        "not_a_string",
        "too_long",
        None,
        "not_a_string",
        "control_characters",
    ]
    assert results[4].e164 == e164(good_in)
    assert all(isinstance(r, PhoneResult) and r.liveness_checked is False for r in results)


def test_result_is_frozen() -> None:
    result = verify_phone("")
    with pytest.raises(AttributeError):
        result.status = PhoneStatus.VALID  # type: ignore[misc]


# --- CLI -------------------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `tributary ARGS` in process through the production error handling (cli.errors.run_cli).

    The app holds only this command group (plus a callback so Typer keeps it a group), so the test
    does not depend on which other command groups exist yet.
    """
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.callback()(lambda: None)
    phone_cli.register(app)
    monkeypatch.setattr(sys, "argv", ["tributary", *args])
    try:
        cli_errors.run_cli(app)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    gb_mobile = example("GB", PhoneNumberType.MOBILE)
    us = example("US", PhoneNumberType.FIXED_LINE)

    code, out, _ = run_cli(
        monkeypatch, capsys, "verify-phone", e164(gb_mobile), national(us), "not a number", "--region", "US", "--json"
    )

    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["number"], r["e164"], r["status"], r["line_type"], r["region"], r["kind"]) for r in rows] == [
        (e164(gb_mobile), e164(gb_mobile), "valid", "mobile", "GB", "mobile"),
        (national(us), e164(us), "valid", "fixed_line_or_mobile", "US", "office"),
        ("not a number", None, "invalid", None, None, None),
    ]
    assert rows[2]["reason"] == "letters"
    assert all(r["liveness_checked"] is False for r in rows)


def test_cli_text_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fr_mobile = example("FR", PhoneNumberType.MOBILE)

    code, out, _ = run_cli(monkeypatch, capsys, "verify-phone", national(fr_mobile), "--region", "FR")

    assert code == 0
    fields = out.rstrip("\n").split("\t")
    assert fields[:6] == [national(fr_mobile), "valid", e164(fr_mobile), "mobile", "FR", "mobile"]


def test_cli_bad_region_is_one_error_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "verify-phone", "+44 20 7946 0958", "--region", "ZZZ")

    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "error: unknown region code 'ZZZ': expected an ISO 3166 alpha-2 code such as US, GB, DE"
    ]
