"""The one CSV/XLSX download helper every HQ table uses."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import RequestFactory
from openpyxl import load_workbook

from scrm.core.exports import table_download, wanted_format, wanted_table

HEADER = ["名称", "金额", "日期", "时间", "公式", "电话", "开关"]
ROWS = [
    [
        "上海南京西路店",
        Decimal("12.50"),
        date(2026, 3, 1),
        datetime(2026, 3, 1, 2, 5, tzinfo=UTC),  # 10:05 in Shanghai
        "=1+1",
        "+86 138-0000-1234",
        True,
    ],
    ["北京三里屯店", 7, None, None, "@SUM(A1)", "-12.50", False],
]
EXPECTED = [
    HEADER,
    [
        "上海南京西路店",
        "12.50",
        "2026-03-01",
        "2026-03-01 10:05",
        "'=1+1",
        "+86 138-0000-1234",
        "✓",
    ],
    ["北京三里屯店", "7", "", "", "'@SUM(A1)", "-12.50", ""],
]


def test_csv_has_a_bom_the_header_and_exact_rows(settings) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    response = table_download(file_format="csv", filename="stores", header=HEADER, rows=ROWS)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="stores-')
    assert response["Content-Disposition"].endswith('.csv"')
    raw = response.content
    assert raw.startswith("\ufeff".encode())
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig")))) == EXPECTED


def test_xlsx_opens_and_holds_the_same_cells(settings) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    response = table_download(
        file_format="xlsx", filename="stores", header=HEADER, rows=iter(ROWS), sheet_title="门店"
    )
    assert response["Content-Disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(response.content))
    sheet = book.active
    assert sheet.title == "门店"
    cells = [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert cells == [
        HEADER,
        [
            "上海南京西路店",
            12.5,
            "2026-03-01",
            "2026-03-01 10:05",
            "'=1+1",
            "+86 138-0000-1234",
            "✓",
        ],
        ["北京三里屯店", 7, "", "", "'@SUM(A1)", "-12.50", ""],
    ]
    # Nothing in the sheet is a formula.
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_an_empty_table_is_just_the_header() -> None:
    response = table_download(file_format="csv", filename="x", header=["a", "b"], rows=[])
    assert response.content.decode("utf-8-sig") == "a,b\r\n"


def test_an_unknown_format_is_refused_by_the_helper() -> None:
    with pytest.raises(ValueError, match="pdf"):
        table_download(file_format="pdf", filename="x", header=["a"], rows=[])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"format": "csv"}, "csv"),
        ({"format": "xlsx"}, "xlsx"),
        ({"format": "pdf"}, None),
        ({}, None),
    ],
)
def test_wanted_format_only_knows_csv_and_xlsx(query: dict[str, str], expected: str | None) -> None:
    assert wanted_format(RequestFactory().get("/hq/org/stores/", query)) == expected


def test_wanted_table_names_the_table_of_a_page_with_several() -> None:
    assert wanted_table(RequestFactory().get("/", {"table": "pools", "format": "csv"})) == "pools"
    assert wanted_table(RequestFactory().get("/", {"format": "csv"})) == ""


@pytest.mark.django_db
def test_an_unknown_format_shows_the_page(client, org) -> None:  # type: ignore[no-untyped-def]
    client.force_login(org.hq_admin)
    response = client.get("/hq/org/stores/", {"format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert 'data-testid="export-links"' in response.content.decode()
