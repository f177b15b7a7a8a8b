"""Reading uploaded tables (channel exports, member lists): CSV in UTF-8 (with or without
BOM) or GBK/GB18030, and XLSX, streamed row by row so a 200 MB file never sits in memory
whole. Shared by the channel imports and segment list uploads, so both accept and refuse
the same files with the same messages."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

BLOCK = 1 << 20
ENCODINGS = ("utf-8", "gb18030")


class ImportFileError(Exception):
    """The file cannot be imported at all; nothing was written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImportFileError], tuple[str, str]]:
        return (type(self), (self.code, self.message))  # crosses from the parsing process


@dataclass(frozen=True)
class FileInfo:
    format: str  # "csv" or "xlsx"
    encoding: str  # "utf-8-sig", "utf-8", "gb18030", or "" for xlsx
    headers: list[str]
    rows_estimate: int
    delimiter: str = ","


def inspect_file(path: Path, *, name: str, max_bytes: int) -> FileInfo:
    """Check the whole file before anything is written; raise ImportFileError saying why."""
    size = path.stat().st_size
    if size == 0:
        raise ImportFileError("file_empty", _("The file is empty (0 bytes)."))
    if size > max_bytes:
        raise ImportFileError(
            "file_too_large",
            _("The file is %(size)s MB; the limit is %(limit)s MB. Split it and import the parts.")
            % {"size": f"{size / 1e6:.0f}", "limit": f"{max_bytes / 1e6:.0f}"},
        )
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if head.startswith(b"PK\x03\x04"):
        return _inspect_xlsx(path)
    if name.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(
            "file_not_xlsx", _("The file is named .xlsx but is not an Excel workbook.")
        )
    if b"\x00" in head:
        raise ImportFileError(
            "file_binary",
            _(
                "The file is not a CSV text file (it contains binary data). Export it again as "
                "CSV or XLSX."
            ),
        )
    encoding, lines = _detect_encoding(path, head)
    with open(path, encoding=encoding, newline="") as text:
        sample = text.read(65536)
    delimiter = _delimiter(sample)
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    headers = next(reader, [])
    if not any(h.strip() for h in headers):
        raise ImportFileError("file_no_header", _("The first row must hold the column headers."))
    if not any(any(cell.strip() for cell in row) for row in reader) and lines <= 1:
        raise ImportFileError("file_no_rows", _("The file has column headers but no data rows."))
    return FileInfo("csv", encoding, [h.strip() for h in headers], max(0, lines - 1), delimiter)


def reopen(path: Path, *, encoding: str) -> FileInfo:
    """The FileInfo of a file `inspect_file` already accepted (a job starting or resuming):
    reads only the header, not the whole file again."""
    with open(path, "rb") as handle:
        if handle.read(4).startswith(b"PK\x03\x04"):
            return _inspect_xlsx(path)
    with open(path, encoding=encoding, newline="") as text:
        sample = text.read(65536)
    delimiter = _delimiter(sample)
    headers = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    return FileInfo("csv", encoding, [h.strip() for h in headers], 0, delimiter)


def _detect_encoding(path: Path, head: bytes) -> tuple[str, int]:
    """Decode the whole file once (fast, in C) to choose the encoding and count lines."""
    candidates = ("utf-8-sig",) if head.startswith(codecs.BOM_UTF8) else ENCODINGS
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        newlines = 0
        last = b""
        try:
            with open(path, "rb") as handle:
                while block := handle.read(BLOCK):
                    decoder.decode(block)
                    newlines += block.count(b"\n")
                    last = block[-1:]
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding, newlines + (0 if last == b"\n" else 1)
    raise ImportFileError(
        "file_encoding",
        _(
            "The file is neither UTF-8 nor GBK/GB18030 text. Save it as CSV (UTF-8) or XLSX "
            "and try again."
        ),
    )


def _delimiter(sample: str) -> str:
    first = sample.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _inspect_xlsx(path: Path) -> FileInfo:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(
            "file_not_xlsx",
            _("The Excel file cannot be read: %(error)s") % {"error": str(exc)[:100]},
        ) from exc
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        headers = [cell_text(v) for v in next(rows, ())]
        if not any(headers):
            raise ImportFileError(
                "file_no_header", _("The first row must hold the column headers.")
            )
        if next(rows, None) is None:
            raise ImportFileError(
                "file_no_rows", _("The file has column headers but no data rows.")
            )
        estimate = max(0, (sheet.max_row or 1) - 1)
    finally:
        book.close()
    return FileInfo("xlsx", "", headers, estimate)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def iter_rows(
    path: Path, info: FileInfo, *, start_after: int = 0
) -> Iterator[tuple[int, list[str]]]:
    """Data rows as (row number as the spreadsheet shows it, cells). The header is row 1.

    `start_after` skips rows already imported (a resumed job) without yielding them.
    """
    if info.format == "xlsx":
        yield from _iter_xlsx(path, start_after)
        return
    with open(path, encoding=info.encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=info.delimiter)
        next(reader, None)
        for number, row in enumerate(reader, start=2):
            if number <= start_after:
                continue
            if not any(cell.strip() for cell in row):
                continue
            yield number, row


def _iter_xlsx(path: Path, start_after: int) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        next(rows, None)
        for number, values in enumerate(rows, start=2):
            if number <= start_after:
                continue
            cells = [cell_text(v) for v in values]
            if any(cells):
                yield number, cells
    finally:
        book.close()


def header_key(header: Any) -> str:
    """A column header as compared: NFKC, no spaces, lower case."""
    return unicodedata.normalize("NFKC", str(header or "")).strip().lower().replace(" ", "")


# A cell starting with one of these is a formula to Excel and WPS (DDE and HYPERLINK tricks).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Numbers as people write phones and amounts ("+86 138-0000-1234", "-12.50") call nothing.
_PLAIN_NUMBER = re.compile(r"[+\-]?[\d\s+\-().,（）]*")


def spreadsheet_safe(value: Any) -> Any:
    """A value echoed from an uploaded file into a report someone will open in a
    spreadsheet: text that would run as a formula is prefixed with an apostrophe."""
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_STARTS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value
