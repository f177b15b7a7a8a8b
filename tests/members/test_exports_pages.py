"""Every HQ members table downloads as CSV and XLSX: the rows the page's filters and the
viewer's scope select (all of them, not one page), phones masked as on the page."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from members.models import Segment, SegmentSize
from tests.conftest import Org
from tests.downloads import records, table
from tests.members.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMATS = ("csv", "xlsx")
FEMALE = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}


@pytest.mark.parametrize("file_format", FORMATS)
def test_member_list_downloads_every_match_masked_and_scoped(
    client: Client, org: Org, file_format: str
) -> None:
    MemberFactory.create_batch(30, home_store=org.a1, name="批量会员")
    client.force_login(org.store_manager_a1)
    rows = records(client.get("/hq/members/", {"format": file_format}))
    assert len(rows) == 33  # past the 25 of the first page
    assert {r["name"] for r in rows} == {"王小美", "李小红", "张三", "批量会员"}
    assert {r["home store"] for r in rows} == {"上海南京西路店"}
    wang = next(r for r in rows if r["name"] == "王小美")
    assert (wang["id"], wang["phone"], wang["guide"]) == (
        str(org.member_of_guide_a1.pk),
        "138****1234",
        str(org.guide_a1),
    )
    assert wang["lifecycle stage"] == "会员"


def test_member_list_download_follows_the_filters(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    rows = records(client.get("/hq/members/", {"q": "王小美", "format": "csv"}))
    assert [(r["name"], r["phone"]) for r in rows] == [("王小美", "138****1234")]
    rows = records(client.get("/hq/members/", {"store": org.b1.pk, "format": "xlsx"}))
    assert [r["name"] for r in rows] == ["钱五"]
    # With the permission the page shows full numbers, and so does the file.
    org.hq_operator.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    rows = records(client.get("/hq/members/", {"q": "王小美", "format": "xlsx"}))
    assert rows[0]["phone"] == "+8613800001234"


def test_member_list_download_over_the_cap_says_so_and_sends_nothing(
    client: Client, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("members.views.downloads.EXPORT_LIMIT", 2)
    client.force_login(org.store_manager_a1)
    response = client.get("/hq/members/", {"store": org.a1.pk, "format": "csv"})
    assert response.status_code == 302
    assert response["Location"] == f"/hq/members/?store={org.a1.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "共有 3 位会员符合条件：请缩小筛选范围至 2 位以内再导出。" in page
    assert "attachment" not in response.get("Content-Disposition", "")
    # The old export URL keeps working, with the same cap.
    old = client.get("/hq/members/export/", {"format": "xlsx"})
    assert old.status_code == 302 and old["Location"] == "/hq/members/?"


def test_member_list_page_offers_the_links(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    body = client.get("/hq/members/", {"q": "王"}).content.decode()
    assert 'href="?q=%E7%8E%8B&amp;format=csv"' in body
    assert 'href="?q=%E7%8E%8B&amp;format=xlsx"' in body
    # An unknown format shows the page.
    assert client.get("/hq/members/", {"format": "pdf"}).status_code == 200


@pytest.mark.parametrize("file_format", FORMATS)
def test_segment_list_downloads_scoped_and_searched(
    client: Client, org: Org, file_format: str
) -> None:
    counted = datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)
    Segment.objects.create(name="女性会员", rules=FEMALE, size=4, sized_at=counted)
    Segment.objects.create(name="本店女性", rules=FEMALE, store=org.a1)
    Segment.objects.create(name="北京女性", rules=FEMALE, store=org.b1)
    client.force_login(org.store_manager_a1)
    assert table(client.get("/hq/segments/", {"format": file_format})) == [
        ["名称", "说明", "类型", "会员", "统计时间", "门店", "创建人"],
        ["本店女性", "", "动态（使用时实时计算）", "", "", "上海南京西路店", ""],
    ]
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/segments/", {"q": "女性会员", "format": file_format}))
    assert rows[1:] == [
        ["女性会员", "", "动态（使用时实时计算）", "4", "2026-03-01 09:30", "总部", ""]
    ]


@pytest.mark.parametrize("file_format", FORMATS)
def test_segment_page_downloads_its_members_and_its_size_history(
    client: Client, org: Org, file_format: str
) -> None:
    segment = Segment.objects.create(name="本店女性", rules=FEMALE, store=org.a1)
    SegmentSize.objects.create(
        segment=segment, at=datetime(2026, 3, 1, 8, 0, tzinfo=SHANGHAI), size=3
    )
    SegmentSize.objects.create(
        segment=segment, at=datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI), size=4
    )
    client.force_login(org.store_manager_a1)
    rows = records(client.get(f"/hq/segments/{segment.pk}/", {"format": file_format}))
    assert sorted((r["name"], r["phone"]) for r in rows) == sorted(
        (m.name, m.masked_phone)
        for m in (org.member_of_guide_a1, org.member_of_guide_a1_other, org.member_a1_unassigned)
    )
    sizes = table(
        client.get(f"/hq/segments/{segment.pk}/", {"table": "sizes", "format": file_format})
    )
    assert sizes == [["统计时间", "会员"], ["2026-03-02 08:00", "4"], ["2026-03-01 08:00", "3"]]
    # The old export URL gives the same members.
    old = records(client.get(f"/hq/segments/{segment.pk}/export/", {"format": file_format}))
    assert sorted(r["id"] for r in old) == sorted(r["id"] for r in rows)
