"""Reading back a table download (CSV or XLSX) in page tests."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook


def table(response: Any) -> list[list[str]]:
    """The downloaded table, CSV or XLSX, as rows of text (numbers as the CSV writes them)."""
    assert response.status_code == 200, response.status_code
    assert response["Content-Disposition"].startswith("attachment; ")
    if response["Content-Type"].startswith("text/csv"):
        assert response.content.startswith("\ufeff".encode())
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(response.content)).active
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def records(response: Any) -> list[dict[str, str]]:
    """The downloaded rows as {header: cell}."""
    header, *rows = table(response)
    return [dict(zip(header, row, strict=True)) for row in rows]
