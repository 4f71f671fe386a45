"""Reading CSV files as people really export them, and writing the enriched copy.

Reading streams: one pass (`inspect_csv`) finds the encoding, delimiter, header, row count and
widest row and hashes the bytes (the resume fingerprint); `read_rows` then yields one row at a time.
Nothing holds the whole file.

Encodings: a BOM decides (UTF-8 or UTF-16); UTF-16 without a BOM is recognised by its NUL pattern;
otherwise UTF-8 if the whole file decodes as UTF-8, else Windows-1252 (what Excel writes on Windows).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.enrichment.rows import output_header
from core.errors import InvalidInput

SAMPLE_BYTES = 64 * 1024
HASH_CHUNK_BYTES = 1024 * 1024
# Far beyond any real cell; a bigger one means the file is not what it claims to be.
MAX_CELL_CHARS = 1_000_000
DELIMITERS = ",;|\t"
# Formula neutralisation (the rule, documented in README.md "CSV enrichment"): a cell a spreadsheet
# would evaluate gets a leading ' so it is shown, not run. That is a cell starting with = or @, a tab or
# a carriage return, or + or - followed by something that is not a number. A lone + or - and numbers
# with a sign (-12.5, +1e3, and phone numbers such as +1 (415) 555-0100, which we write in E.164) are
# left alone: a spreadsheet reads them as text or numbers, nothing can execute.
_ALWAYS_FORMULA = ("=", "@", "\t", "\r")
_SIGNS = ("+", "-")
_SIGNED_NUMBER = re.compile(
    r"[+-](?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?%?"  # -12, -1.5, +.5, -3e4, -5%
    r"|[+-][0-9][0-9 ().\-]*"  # phone-like: +1 (415) 555-0100
)
ENCODING_INPUT = "input"  # `--encoding input`: write the output in the input's own encoding
DEFAULT_OUTPUT_ENCODING = "utf-8-sig"  # UTF-8 with a BOM: what Excel needs to read UTF-8 as UTF-8

csv.field_size_limit(MAX_CELL_CHARS)


@dataclass(frozen=True)
class CsvFormat:
    path: Path
    encoding: str  # a Python codec name
    has_bom: bool
    delimiter: str
    header: tuple[str, ...]
    data_rows: int  # rows after the header (blank lines count: they are written back too)
    width: int  # cells in the widest row, header included
    fingerprint: str  # sha256 of the file's bytes


@dataclass(frozen=True)
class CsvRow:
    index: int  # 0-based among data rows
    line: int  # line of the file where the row ends (1-based), for error messages
    cells: list[str]


def neutralise(value: str) -> str:
    """Prefix a value a spreadsheet would evaluate as a formula with ' (the rule is above)."""
    if value.startswith(_ALWAYS_FORMULA):
        return "'" + value
    if value.startswith(_SIGNS) and value.strip() not in _SIGNS and not _SIGNED_NUMBER.fullmatch(value):
        return "'" + value
    return value


def output_encoding(choice: str, input_encoding: str) -> str:
    """The codec the output is written in: a codec name (`utf-8-sig`, `utf-8`, `cp1252`, ...) or
    `input` (the input's own encoding). Raises InvalidInput naming the option for an unknown one."""
    name = choice.strip()
    if name.lower() == ENCODING_INPUT:
        return input_encoding
    try:
        if name:
            return codecs.lookup(name).name
    except LookupError:
        pass
    raise InvalidInput(f"--encoding {choice!r}: unknown encoding (e.g. utf-8-sig, utf-8, cp1252, or {ENCODING_INPUT})")


def _detect_encoding(path: Path, sample: bytes) -> tuple[str, bool]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True
    if b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        # ASCII text in UTF-16 has a NUL in every other byte; anything else with NULs is binary.
        if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
            return "utf-16-le", False
        if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
            return "utf-16-be", False
        offset = sample.index(b"\x00")
        raise InvalidInput(f"{path.name}: this looks like a binary file, not CSV text (NUL byte at offset {offset})")
    if _utf8_all_the_way(path):
        return "utf-8", False
    return "cp1252", False


def _utf8_all_the_way(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(HASH_CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _sniff_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    sample = text[: text.rfind("\n") + 1] or text
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
        if delimiter in first_line:
            return delimiter
    except csv.Error:
        pass
    # The sniffer gives up on short or irregular samples: the header line decides.
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _open_text(path: Path, encoding: str) -> IO[str]:
    return path.open("r", encoding=encoding, newline="")


def check_input_path(path: Path) -> None:
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"{path}: cannot be read (permission denied)")


def check_output_path(path: Path, input_path: Path) -> None:
    """-o must name a file we can create in a folder that exists (checked before anything is held or
    charged; the `.partial` file is written beside it)."""
    if path.is_dir():
        raise InvalidInput(f"-o {path}: is a folder, not a file")
    if path.exists() and path.resolve() == input_path.resolve():
        raise InvalidInput(f"-o {path}: the output must be another file than the input")
    folder = path.parent
    if not folder.exists():
        raise InvalidInput(f"-o {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInput(f"-o {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInput(f"-o {path}: cannot write there (permission denied)")


def partial_path(output: Path) -> Path:
    """Where the output is written until it is complete: beside it, renamed over it at the end."""
    return output.with_name(output.name + ".partial")


def inspect_csv(path: Path) -> CsvFormat:
    """One streaming pass over the file. Raises InvalidInput, naming the file and line, for input that
    cannot be read as CSV: missing, empty, binary, undecodable, header only, or a runaway cell."""
    check_input_path(path)
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES)
    if not sample.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
        raise InvalidInput(f"{path.name}: the file is empty (expected a header row and data rows)")
    encoding, has_bom = _detect_encoding(path, sample)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    try:
        with _open_text(path, encoding) as f:
            delimiter = _sniff_delimiter(f.read(SAMPLE_BYTES))
        header: list[str] | None = None
        rows = 0
        width = 0
        next_start = last_start = 1  # lines where the next / the last row read begins
        with _open_text(path, encoding) as f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                for cells in reader:
                    if header is None:
                        header = cells
                    else:
                        rows += 1
                    width = max(width, len(cells))
                    last_start, next_start = next_start, reader.line_num + 1
            except csv.Error as exc:
                raise InvalidInput(f"{path.name}, line {reader.line_num}: cannot be read as CSV ({exc})") from exc
        if reader.line_num > last_start:  # the last row spans lines: did a quote swallow the rest?
            _check_quotes_closed(path, encoding, delimiter, last_start)
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path.name}: not readable as {encoding} text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as CSV in UTF-8"
        ) from exc
    if header is None or not any(cell.strip() for cell in header):
        raise InvalidInput(f"{path.name}: the file is empty (expected a header row and data rows)")
    if rows == 0:
        raise InvalidInput(f"{path.name}: only a header row, no data rows to enrich")
    return CsvFormat(
        path=path,
        encoding=encoding,
        has_bom=has_bom,
        delimiter=delimiter,
        header=tuple(header),
        data_rows=rows,
        width=width,
        fingerprint=digest.hexdigest(),
    )


def _check_quotes_closed(path: Path, encoding: str, delimiter: str, first_line: int) -> None:
    """Python's csv reader silently reads an unclosed quote to the end of the file (one huge cell);
    scan the last row as it does and report the line where that quoted field began."""
    in_quote = quote_pending = False
    field_start = True
    line = opened_at = first_line
    with _open_text(path, encoding) as f:
        for _ in range(first_line - 1):
            f.readline()
        for ch in iter(lambda: f.read(1), ""):
            if in_quote:
                if quote_pending:
                    quote_pending = False
                    if ch == '"':
                        continue  # "" is an escaped quote
                    in_quote = False  # closed; this character is read as an unquoted one
                elif ch == '"':
                    quote_pending = True
                    continue
                else:
                    line += ch == "\n"
                    continue
            if ch == '"' and field_start:
                in_quote, opened_at, field_start = True, line, False
                continue
            field_start = ch in (delimiter, "\n", "\r")
            line += ch == "\n"
    if in_quote and not quote_pending:
        raise InvalidInput(
            f"{path.name}, line {opened_at}: a quoted field starts here and its closing quote is missing "
            "(it would swallow the rest of the file)"
        )


def read_rows(fmt: CsvFormat) -> Iterator[CsvRow]:
    """The data rows, one at a time, as the file has them (ragged rows are not padded here)."""
    with _open_text(fmt.path, fmt.encoding) as f:
        reader = csv.reader(f, delimiter=fmt.delimiter)
        try:
            next(reader)
            for index, cells in enumerate(reader):
                yield CsvRow(index=index, line=reader.line_num, cells=cells)
        except csv.Error as exc:
            raise InvalidInput(f"{fmt.path.name}, line {reader.line_num}: cannot be read as CSV ({exc})") from exc


class CsvOutput:
    """The enriched copy: the input's columns (padded to the widest row) then the appended ones, named
    by core.enrichment.rows.output_header (never a duplicate header).

    Written with the input's delimiter in `encoding` (default UTF-8 with a BOM, which Excel needs to
    read UTF-8; characters an encoding such as cp1252 cannot hold are written as ?); every value is
    neutralised against formula injection."""

    def __init__(
        self, path: Path, fmt: CsvFormat, appended: Sequence[str], encoding: str = DEFAULT_OUTPUT_ENCODING
    ) -> None:
        self.path = path
        self.width = fmt.width
        self._file = path.open("w", encoding=encoding, errors="replace", newline="")
        self._writer = csv.writer(self._file, delimiter=fmt.delimiter, quoting=csv.QUOTE_MINIMAL)
        padded = list(fmt.header) + [f"extra_{i + 1}" for i in range(fmt.width - len(fmt.header))]
        self._writer.writerow([neutralise(v) for v in output_header(padded, appended)])

    def write(self, cells: list[str], appended: list[str]) -> None:
        padded = cells + [""] * (self.width - len(cells))
        self._writer.writerow([neutralise(v) for v in padded] + [neutralise(v) for v in appended])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
