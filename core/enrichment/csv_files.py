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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.errors import InvalidInput

SAMPLE_BYTES = 64 * 1024
HASH_CHUNK_BYTES = 1024 * 1024
# Far beyond any real cell; a bigger one means the file is not what it claims to be.
MAX_CELL_CHARS = 1_000_000
DELIMITERS = ",;|\t"
# Cells a spreadsheet would evaluate. A leading + or - before a plain number or phone number is not
# neutralised: spreadsheets read those as numbers, nothing can execute, and "+14155550100" stays usable.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ().\-]*")

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
    """Prefix a formula-looking value with ' so spreadsheet apps show it instead of running it."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


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


def inspect_csv(path: Path) -> CsvFormat:
    """One streaming pass over the file. Raises InvalidInput, naming the file and line, for input that
    cannot be read as CSV: missing, empty, binary, undecodable, header only, or a runaway cell."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
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
        with _open_text(path, encoding) as f:
            reader = csv.reader(f, delimiter=delimiter)
            try:
                for cells in reader:
                    if header is None:
                        header = cells
                    else:
                        rows += 1
                    width = max(width, len(cells))
            except csv.Error as exc:
                raise InvalidInput(f"{path.name}, line {reader.line_num}: cannot be read as CSV ({exc})") from exc
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
    """The enriched copy: the input's columns (padded to the widest row) then the appended ones.

    Written in UTF-8 (with a BOM when the input had one, which Excel needs to read UTF-8) with the
    input's delimiter; every value is neutralised against formula injection."""

    def __init__(self, path: Path, fmt: CsvFormat, appended: tuple[str, ...]) -> None:
        self.path = path
        self.width = fmt.width
        self._file = path.open("w", encoding="utf-8-sig" if fmt.has_bom else "utf-8", newline="")
        self._writer = csv.writer(self._file, delimiter=fmt.delimiter, quoting=csv.QUOTE_MINIMAL)
        header = list(fmt.header) + [f"extra_{i + 1}" for i in range(fmt.width - len(fmt.header))]
        self._writer.writerow([neutralise(v) for v in header] + list(appended))

    def write(self, cells: list[str], appended: list[str]) -> None:
        padded = cells + [""] * (self.width - len(cells))
        self._writer.writerow([neutralise(v) for v in padded] + [neutralise(v) for v in appended])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
