"""A selection of a sheet read once: its header row (detected with the CSV header rules), its data rows,
the column mapping the user chose, and where results go (new columns that cannot collide, or the
user's columns, never an identifier column)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.enrichment.csv_enrich import row_input
from core.enrichment.headers import FIELDS, IDENTIFYING_FIELDS, HeaderMap, map_header
from core.enrichment.rows import RowInput, output_header
from core.errors import InvalidInput
from core.sheets.a1 import GridRange, column_index, column_letter, parse_range, quoted
from core.sheets.placement import row_fingerprint
from core.sheets.types import (
    MAPPABLE_FIELDS,
    OUTPUT_KINDS,
    ColumnView,
    JobRequest,
    OutputColumn,
    OutputSpec,
    SheetGateway,
    SheetRef,
)


@dataclass(frozen=True)
class Selection:
    sheet: SheetRef
    grid: GridRange
    header_row: int  # 0: no header row
    first_data_row: int
    headers: tuple[str, ...]  # one per selected column
    detected: HeaderMap  # what the header rules recognised
    rows: tuple[tuple[str, ...], ...]  # data rows, padded to the selection's width
    outputs: dict[str, OutputColumn]  # the default output columns

    @property
    def last_data_row(self) -> int:
        return self.first_data_row + len(self.rows) - 1

    def columns(self) -> tuple[ColumnView, ...]:
        fields = {index: field for field, index in self.detected.columns if field in MAPPABLE_FIELDS}
        return tuple(
            ColumnView(column_letter(self.grid.first_col + i), h, fields.get(i)) for i, h in enumerate(self.headers)
        )


@dataclass(frozen=True)
class SheetRow:
    sheet_row: int
    cells: tuple[str, ...]
    item: RowInput
    fingerprint: str
    blank: bool  # no identifier cell filled


def _pad(row: Sequence[str], width: int) -> tuple[str, ...]:
    cells = ["" if c is None else str(c) for c in list(row)[:width]]
    return tuple(cells + [""] * (width - len(cells)))


def read_selection(gateway: SheetGateway, sheet: SheetRef, max_rows: int) -> Selection:
    """One batchGet: the selection, its first row in full and row 1 in full (header candidates)."""
    grid = parse_range(sheet.range_a1)
    if grid.rows > max_rows + 1:
        raise InvalidInput(
            f"sheet.range_a1: {grid.rows} rows selected; at most {max_rows:,} rows can be enriched at once",
            field="sheet.range_a1",
        )
    name = sheet.sheet_name
    ranges = [quoted(name, grid.a1()), quoted(name, f"{grid.first_row}:{grid.first_row}")]
    if grid.first_row > 1:
        ranges.append(quoted(name, "1:1"))
    answers = gateway.read(ranges)
    width = grid.last_col - grid.first_col + 1
    values = [_pad(r, width) for r in answers[0]]
    values += [("",) * width] * (grid.rows - len(values))
    first_full = list(answers[1][0]) if answers[1] else []
    top_full = list(answers[2][0]) if len(answers) > 2 and answers[2] else []
    header_row, headers, data = 0, ("",) * width, values
    detected = map_header(values[0]) if values else HeaderMap((), ())
    full_header = first_full
    if _maps_something(detected):
        header_row, headers, data = grid.first_row, values[0], values[1:]
    elif grid.first_row > 1 and _maps_something(top := map_header(_pad(top_full[grid.first_col :], width))):
        header_row, headers, detected, full_header = 1, _pad(top_full[grid.first_col :], width), top, top_full
    else:
        detected = HeaderMap(headers, ())
    if not data:
        raise InvalidInput("sheet.range_a1: the selection has no rows below its header; select the rows to enrich",
                           field="sheet.range_a1")
    first_data = grid.first_row + (1 if header_row == grid.first_row else 0)
    outputs = _default_outputs(full_header, grid.last_col + 1)
    return Selection(sheet, grid, header_row, first_data, tuple(headers), detected, tuple(data), outputs)


def _maps_something(header_map: HeaderMap) -> bool:
    return any(field in MAPPABLE_FIELDS for field, _ in header_map.columns)


def _default_outputs(header: Sequence[str], used_width: int) -> dict[str, OutputColumn]:
    """Columns named tributary_email / _mobile / _status: the header's own when it has them (a sheet
    enriched before), else new ones right of everything used, named so they cannot collide."""
    cells = [str(c or "").strip() for c in header]
    last_used = max((i for i, c in enumerate(cells) if c), default=-1)
    start = max(last_used + 1, used_width)
    names = output_header(cells, OUTPUT_KINDS)[len(cells):]
    existing = {c.lower(): i for i, c in enumerate(cells) if c}
    out: dict[str, OutputColumn] = {}
    for kind, name in zip(OUTPUT_KINDS, names, strict=True):
        base = f"tributary_{kind}"
        if base in existing:
            out[kind] = OutputColumn(column_letter(existing[base]), base)
        else:
            out[kind] = OutputColumn(column_letter(start), name)
            start += 1
    return out


def header_map_for(selection: Selection, mapping: Sequence[tuple[str, str]]) -> HeaderMap:
    """The user's mapping (field -> letter) as a HeaderMap over the selected columns."""
    columns: dict[str, int] = {}
    used: dict[int, str] = {}
    for field, letter in mapping:
        if field not in MAPPABLE_FIELDS:
            raise InvalidInput(f"mapping.{field}: not a field (fields: {', '.join(MAPPABLE_FIELDS)})",
                               field=f"mapping.{field}")
        if not letter:
            continue
        index = column_index(letter) - selection.grid.first_col
        if not 0 <= index < len(selection.headers):
            raise InvalidInput(f"mapping.{field}: column {letter} is not in the selection", field=f"mapping.{field}")
        if index in used:
            raise InvalidInput(f"mapping.{field}: column {letter} is already mapped to {used[index]}",
                               field=f"mapping.{field}")
        used[index] = field
        columns[field] = index
    if not any(f in columns for f in IDENTIFYING_FIELDS):
        raise InvalidInput(
            "mapping: no identifier column; map a column to email, LinkedIn URL, company or domain",
            field="mapping",
        )
    ordered = tuple(sorted(columns.items(), key=lambda c: FIELDS.index(c[0])))
    return HeaderMap(header=selection.headers, columns=ordered)


def resolve_outputs(selection: Selection, request: JobRequest, header_map: HeaderMap) -> dict[str, OutputColumn]:
    """The output columns: the defaults, or the user's letters (distinct, never an identifier column)."""
    if not (request.want_email or request.want_mobile):
        raise InvalidInput("want: ask for email, mobile or both", field="want")
    spec: OutputSpec = request.output
    if spec.mode == "new_columns":
        chosen = dict(selection.outputs)
    elif spec.mode == "columns":
        given = dict(spec.columns)
        chosen = {}
        for kind in OUTPUT_KINDS:
            if kind == "email" and not request.want_email or kind == "mobile" and not request.want_mobile:
                continue
            letter = (given.get(kind) or "").strip().upper()
            if not letter:
                raise InvalidInput(f"output.columns.{kind}: pick a column for {kind}", field=f"output.columns.{kind}")
            column_index(letter)
            # A picked column without a header gets the default name (written only into an empty cell).
            chosen[kind] = OutputColumn(letter, _header_of(selection, letter) or selection.outputs[kind].header)
    else:
        raise InvalidInput("output.mode: new_columns or columns", field="output.mode")
    mapped = {column_letter(selection.grid.first_col + i) for _, i in header_map.columns}
    seen: dict[str, str] = {}
    for kind, col in chosen.items():
        if col.letter in mapped:
            raise InvalidInput(f"output.columns.{kind}: column {col.letter} holds an identifier; pick another",
                               field=f"output.columns.{kind}")
        if col.letter in seen:
            raise InvalidInput(f"output.columns.{kind}: column {col.letter} is already the {seen[col.letter]} column",
                               field=f"output.columns.{kind}")
        seen[col.letter] = kind
    if not request.want_email:
        chosen.pop("email", None)
    if not request.want_mobile:
        chosen.pop("mobile", None)
    return chosen


def _header_of(selection: Selection, letter: str) -> str:
    index = column_index(letter) - selection.grid.first_col
    return selection.headers[index] if 0 <= index < len(selection.headers) else ""


def identifier_indexes(header_map: HeaderMap) -> list[int]:
    """The mapped columns, left to right: the cells a row's fingerprint is made of."""
    return sorted(index for _, index in header_map.columns)


def sheet_rows(selection: Selection, header_map: HeaderMap) -> list[SheetRow]:
    """Every data row as a job input row, with its fingerprint (CSV row rules: core.enrichment)."""
    idx = identifier_indexes(header_map)
    out = []
    for i, cells in enumerate(selection.rows):
        ids = [cells[j] for j in idx]
        out.append(
            SheetRow(
                sheet_row=selection.first_data_row + i,
                cells=cells,
                item=row_input(header_map, i, list(cells)),
                fingerprint=row_fingerprint(ids),
                blank=not any(c.strip() for c in ids),
            )
        )
    return out


def mapping_letters(selection: Selection, header_map: HeaderMap) -> dict[str, str]:
    return {field: column_letter(selection.grid.first_col + index) for field, index in header_map.columns}
