"""The campaigns tables download as CSV and XLSX: the rows the page lists, with its
filters, scoped to the user — another store's rows never appear."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from campaigns.models import Campaign, Material
from tests.campaigns.test_funnel import deliver, make_broadcast
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def rows_of(response: Any) -> list[list[Any]]:
    assert response.status_code == 200
    if response["Content-Type"].startswith("text/csv"):
        assert response.content.startswith("\ufeff".encode())
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(response.content)).active
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


@pytest.fixture
def en_client(client: Any) -> Any:
    client.cookies["scrm_language"] = "en"
    return client


def test_broadcasts_download_with_the_status_filter_and_scope(org: Org, en_client: Any) -> None:
    hq = make_broadcast(org, "春季上新")
    deliver(hq, org.member_b1, timezone.now())
    make_broadcast(org, "南京西路店庆", store=org.a1)
    make_broadcast(org, "北京店庆", store=org.b1)
    en_client.force_login(org.hq_operator)
    rows = rows_of(en_client.get("/hq/broadcasts/?format=csv"))
    assert rows[0] == [
        "Name",
        "Channel",
        "Audience",
        "Store",
        "Status",
        "Sent",
        "Waiting",
        "By",
        "Created",
    ]
    assert sorted(r[0] for r in rows[1:]) == ["北京店庆", "南京西路店庆", "春季上新"]
    spring = next(r for r in rows[1:] if r[0] == "春季上新")
    assert spring[3:7] == ["Head office", "Sent", "1", "0"]
    assert rows_of(en_client.get("/hq/broadcasts/?status=draft&format=xlsx"))[1:] == []
    en_client.force_login(org.store_manager_a1)
    rows = rows_of(en_client.get("/hq/broadcasts/?format=xlsx"))
    assert [r[0] for r in rows[1:]] == ["南京西路店庆"]


def test_campaigns_download(org: Org, en_client: Any) -> None:
    now = timezone.now()
    for name, store in (("新会员欢迎", None), ("北京会员日", org.b1)):
        Campaign.objects.create(
            name=name,
            template="welcome",
            store=store,
            starts_at=now,
            ends_at=now + timedelta(days=30),
            created_by=org.hq_operator,
            trigger="registered",
        )
    en_client.force_login(org.hq_operator)
    rows = rows_of(en_client.get("/hq/campaigns/?format=csv"))
    assert rows[0][:4] == ["Name", "Trigger", "Store", "Status"] and rows[0][9] == "Left"
    assert sorted(r[0] for r in rows[1:]) == ["北京会员日", "新会员欢迎"]
    en_client.force_login(org.store_manager_a1)
    assert rows_of(en_client.get("/hq/campaigns/?format=xlsx"))[1:] == []


def test_materials_download_with_the_search_and_formulas_inert(org: Org, en_client: Any) -> None:
    Material.objects.create(kind="text", title="会员日", body="=HYPERLINK(1)")
    Material.objects.create(kind="text", title="店庆", body="欢迎", store=org.b1)
    en_client.force_login(org.hq_operator)
    rows = rows_of(en_client.get("/hq/materials/?q=会员&format=csv"))
    assert rows[0][:3] == ["Title", "Kind", "Text"]
    assert [r[:3] for r in rows[1:]] == [["会员日", "Text", "'=HYPERLINK(1)"]]
    en_client.force_login(org.store_manager_a1)
    rows = rows_of(en_client.get("/hq/materials/?format=xlsx"))
    assert [r[0] for r in rows[1:]] == ["会员日"]
    # An unknown format shows the page.
    page = en_client.get("/hq/materials/?format=pdf")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
