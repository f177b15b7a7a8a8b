"""The store and staff tables download as CSV and XLSX: same filters, same scoping."""

from __future__ import annotations

from django.test import Client

from scrm.org.scoping import Role
from tests.conftest import Org
from tests.downloads import table
from tests.org.factories import StoreFactory

STORE_HEADER = ["门店编码", "名称", "城市", "大区", "导购数", "状态"]


def test_store_download_is_scoped_to_the_managers_stores(client: Client, org: Org) -> None:
    client.force_login(org.region_manager_a)
    for file_format in ("csv", "xlsx"):
        rows = table(client.get("/hq/org/stores/", {"format": file_format}))
        assert rows == [
            STORE_HEADER,
            ["HZ001", "杭州湖滨店", "杭州", "华东大区", "0", "营业中"],
            ["SH001", "上海南京西路店", "上海", "华东大区", "2", "营业中"],
        ]
    client.force_login(org.store_manager_a1)
    rows = table(client.get("/hq/org/stores/", {"format": "csv"}))
    assert [r[0] for r in rows[1:]] == ["SH001"]


def test_store_download_follows_the_filters_past_the_first_page(client: Client, org: Org) -> None:
    for n in range(30):
        StoreFactory(region=org.region_b, code=f"TJ{n:03d}", city="天津", is_active=False)
    client.force_login(org.hq_admin)
    rows = table(client.get("/hq/org/stores/", {"q": "天津", "format": "xlsx"}))
    assert len(rows) == 31
    assert rows[1][0] == "TJ000" and rows[1][3:] == ["华北大区", "0", "已关店"]
    rows = table(client.get("/hq/org/stores/", {"region": org.region_b.pk, "format": "csv"}))
    assert len(rows) == 32 and rows[1][0] == "BJ001"


def test_staff_download_is_scoped_and_filtered(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    for file_format in ("csv", "xlsx"):
        rows = table(client.get("/hq/org/staff/", {"role": Role.GUIDE, "format": file_format}))
        assert rows[0] == ["用户名", "名称", "角色", "大区", "门店", "状态"]
        assert [r[0] for r in rows[1:]] == ["guide_a1", "guide_a1_other"]
        assert rows[1][2:] == ["导购", "", "上海南京西路店", "在职"]
        assert rows[1][1] == str(org.guide_a1)
    rows = table(client.get("/hq/org/staff/", {"format": "csv"}))
    assert {r[0] for r in rows[1:]} == {"manager_a1", "guide_a1", "guide_a1_other"}
    assert "guide_b1" not in str(rows)
