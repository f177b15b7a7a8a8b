"""Every HQ table downloads as CSV or XLSX through `table_download`: one header row,
then the rows, with text that a spreadsheet would run as a formula made inert, and a
byte-order mark on CSV so Excel reads the Chinese correctly.

A page offers the download with `?format=csv` / `?format=xlsx` on its own URL (the
same filters, the same `for_user` scoping as what is shown), and includes
`_export_links.html` beside its table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import Promise

from scrm.core.tabular import spreadsheet_safe

FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def wanted_format(request: HttpRequest) -> str | None:
    """The download the request asks for ("csv" / "xlsx"), or None to show the page.
    An unknown format is None too: the page is shown rather than an error."""
    value = request.GET.get("format", "")
    return value if value in FORMATS else None


def wanted_table(request: HttpRequest) -> str:
    """Which table a page with several asks for (`?table=…`, set by `_export_links.html`
    when included `with table="…"`); "" for a page's main table."""
    return request.GET.get("table", "")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, (int, float, Decimal)):
        return value
    return spreadsheet_safe(str(value))


def table_download(
    *,
    file_format: str,
    filename: str,
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    sheet_title: str = "Sheet1",
) -> HttpResponse:
    """A CSV or XLSX attachment named `<filename>-<local time>.<format>`. `rows` may be a
    generator: XLSX is written in openpyxl's write-only mode."""
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if file_format == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(str(sheet_title)[:31])
        sheet.append([_cell(cell) for cell in header])
        for row in rows:
            sheet.append([_cell(cell) for cell in row])
        buffer = io.BytesIO()
        book.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    elif file_format == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([_cell(cell) for cell in header])
        for row in rows:
            writer.writerow([_cell(cell) for cell in row])
        response = HttpResponse("\ufeff" + text.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        raise ValueError(f"unknown export format {file_format!r}")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.{file_format}"'
    return response
