"""Reading what people really export, and writing it back safely (no database involved)."""

import csv
import io

import pytest

from core.enrichment.csv_enrich import row_input
from core.enrichment.csv_files import CsvOutput, inspect_csv, neutralise, read_rows
from core.enrichment.headers import map_header, parse_map_options
from core.errors import InvalidInput

ROWS = [
    ["First Name", "Last Name", "Company", "Notes"],
    ["José", "Müller", "Acme", "a\nb"],
    ["Zoë", "O'Neil", "Initech", ""],
]


def _csv_text(rows, delimiter=",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("delimiter", [",", ";", "|", "\t"])
@pytest.mark.parametrize(
    "encoding,bom",
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
     ("utf-16-le", b""), ("cp1252", b"")],
)
def test_encodings_and_delimiters_round_trip(tmp_path, delimiter, encoding, bom) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(bom + _csv_text(ROWS, delimiter).encode(encoding))
    fmt = inspect_csv(path)
    assert fmt.delimiter == delimiter
    assert fmt.header == tuple(ROWS[0])
    assert fmt.data_rows == 2
    assert [r.cells for r in read_rows(fmt)] == ROWS[1:]  # the quoted newline stays inside its cell
    assert fmt.has_bom == bool(bom)


def test_ragged_rows_are_padded_in_output_never_dropped(tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("name,company\nJane Doe\nJohn Roe,Acme,extra1,extra2\n\nAna,Initech\n")
    fmt = inspect_csv(path)
    assert fmt.data_rows == 4 and fmt.width == 4
    out_path = tmp_path / "out.csv"
    with CsvOutput(out_path, fmt, ("email", "error")) as out:
        for row in read_rows(fmt):
            out.write(row.cells, ["", ""])
    written = list(csv.reader(out_path.open(newline="", encoding="utf-8-sig")))
    assert written[0] == ["name", "company", "extra_1", "extra_2", "tributary_email", "tributary_error"]
    assert written[1] == ["Jane Doe", "", "", "", "", ""]
    assert written[2] == ["John Roe", "Acme", "extra1", "extra2", "", ""]
    assert written[3] == ["", "", "", "", "", ""]  # the blank line is a row too
    assert len(written) == 1 + fmt.data_rows


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf\r\n", "empty"),
        (b"email,company\r\n", "only a header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"name,company\nJ\x81r\x8dg,Acme\n", "not readable as cp1252"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path, content, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message) as exc:
        inspect_csv(path)
    assert "bad.csv" in str(exc.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        inspect_csv(tmp_path / "nope.csv")


def test_a_folder_as_input_is_a_folder_not_a_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="is a folder, not a file"):
        inspect_csv(tmp_path)


@pytest.mark.parametrize(
    "text,line",
    [
        ('a,b\n1,2\n"3,4\n5,6\n7,8\n', 3),  # the quote opens on line 3 and swallows the rest
        ('a,b\n1,"x\ny"\n2,"open\n3,4\n', 4),  # after a legitimate multi-line cell
        ('a,b\n1,2\n3,"say ""hi""\n4,5\n', 3),  # escaped quotes do not close it
    ],
)
def test_an_unclosed_quote_names_the_line_where_the_quoted_field_began(tmp_path, text, line) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=f"in.csv, line {line}: a quoted field starts here"):
        inspect_csv(path)


@pytest.mark.parametrize(
    "text,rows",
    [('a,b\n1,"x\ny"\n', 1), ('a,b\n1,x"y\nz"\n', 2), ('a,b\n1,"say ""hi"""\n', 1)],
)
def test_closed_quotes_and_literal_quotes_are_not_reported(tmp_path, text, rows) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text)
    assert inspect_csv(path).data_rows == rows


def test_enriched_columns_never_repeat_an_input_header() -> None:
    from core.enrichment.rows import OUTPUT_COLUMNS, output_header

    header = ["Email", "email", "Company", "TRIBUTARY_EMAIL", "tributary_email_2", "error"]
    out = output_header(header)
    assert out[: len(header)] == tuple(header)  # the user's own names are kept as they are
    appended = out[len(header) :]
    assert appended[0] == "tributary_email_3" and appended[1] == "tributary_email_status"
    assert len(appended) == len(OUTPUT_COLUMNS)
    folded = [name.lower() for name in out[len(header) - 1 :]]
    assert len(set(folded)) == len(folded) and not set(folded) & {h.lower() for h in header[:-1]}


@pytest.mark.parametrize(
    "choice,expected_bytes",
    [
        ("utf-8-sig", "\ufeffname,tributary_email\r\nLéon,\r\n".encode()),
        ("utf-8", "name,tributary_email\r\nLéon,\r\n".encode()),
        ("input", "name,tributary_email\r\nLéon,\r\n".encode("cp1252")),
        ("CP1252", "name,tributary_email\r\nLéon,\r\n".encode("cp1252")),
    ],
)
def test_output_encoding_excel_reads_by_default(tmp_path, choice, expected_bytes) -> None:
    from core.enrichment.csv_files import output_encoding

    path = tmp_path / "in.csv"
    path.write_bytes("name\r\nLéon\r\n".encode("cp1252"))
    fmt = inspect_csv(path)
    assert fmt.encoding == "cp1252"
    out_path = tmp_path / "out.csv"
    with CsvOutput(out_path, fmt, ("email",), output_encoding(choice, fmt.encoding)) as out:
        for row in read_rows(fmt):
            out.write(row.cells, [""])
    assert out_path.read_bytes() == expected_bytes


def test_unknown_output_encoding_names_the_option() -> None:
    from core.enrichment.csv_files import output_encoding

    for bad in ("klingon", ""):
        with pytest.raises(InvalidInput, match="--encoding .*unknown encoding"):
            output_encoding(bad, "utf-8")


def test_headers_people_use_are_recognised() -> None:
    header = ["Given name", "Surname", "Account Name", "Website", "LinkedIn Profile", "E-mail", "Job Title",
              "Phone Number", "Deal Value"]
    mapping = map_header(header)
    assert dict(mapping.columns) == {
        "first_name": 0, "last_name": 1, "company": 2, "domain": 3, "linkedin_url": 4, "email": 5, "title": 6,
        "phone": 7,
    }
    assert map_header(["first_name", "last_name", "Company", "Domain"]).column_of("domain") == 3


def test_map_overrides_and_its_errors() -> None:
    header = ["Who", "Firm", "Company", "Notes"]
    mapping = map_header(header, parse_map_options(["Who=full_name", "Firm=company", "Company=ignore"]))
    assert dict(mapping.columns) == {"full_name": 0, "company": 1}
    with pytest.raises(InvalidInput, match="no column named 'Nope'"):
        map_header(header, {"Nope": "email"})
    with pytest.raises(InvalidInput, match="unknown field 'salary'"):
        parse_map_options(["Notes=salary"])
    with pytest.raises(InvalidInput, match="expected COLUMN=FIELD"):
        parse_map_options(["Notes"])


def test_rows_without_identifier_and_oversized_cells_are_marked_with_row_column_field() -> None:
    mapping = map_header(["First Name", "Last Name", "Company", "Notes"])
    no_id = row_input(mapping, 4, ["Jane", "Doe", "", "x"])
    assert no_id.problem.startswith("row 5: needs at least one of email, LinkedIn URL, company or website")
    huge = row_input(mapping, 0, ["Jane", "Doe", "A" * 10_000, "n" * 10_000])
    assert huge.problem == "row 1, column 'Company' (company): 10000 characters, at most 255 accepted"
    fine = row_input(mapping, 1, ["Jane", "Doe", "Acme", "n" * 10_000])  # unmapped long cells are fine
    assert fine.problem is None and fine.query.company == "Acme"
    assert row_input(mapping, 2, ["", " ", ""]).problem == "row 3: empty row"


def test_ten_thousand_character_cells_are_read_and_written_back_whole(tmp_path) -> None:
    path = tmp_path / "in.csv"
    long_cell = "x" * 10_000
    path.write_text(_csv_text([["name", "company", "notes"], ["Jane Doe", "Acme", long_cell]]))
    fmt = inspect_csv(path)
    (row,) = list(read_rows(fmt))
    assert row.cells[2] == long_cell


@pytest.mark.parametrize(
    "value,expected",
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd", "'-2+3+cmd"),
        ("\tx", "'\tx"),
        ("\r=1", "'\r=1"),
        ("+14155550100", "+14155550100"),  # a phone number stays usable: nothing can execute
        ("+1 (415) 555-0100", "+1 (415) 555-0100"),
        ("-12.5", "-12.5"),
        ("-", "-"),  # a lone minus (an empty cell in many exports) is not a formula
        ("+", "+"),
        ("-.5", "-.5"),
        ("-3e4", "-3e4"),
        ("-5%", "-5%"),
        ("- item", "'- item"),
        ("-A1", "'-A1"),
        ("--1", "'--1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_formula_neutralisation(value, expected) -> None:
    assert neutralise(value) == expected
