"""Every HQ members table downloads as CSV and XLSX: the rows the page's filters and the
viewer's scope select (all of them, not one page), phones masked as on the page."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from members.models import (
    FollowUpTask,
    MemberMerge,
    Segment,
    SegmentSize,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from members.services.tags import member_tag_add
from tests.conftest import Org
from tests.downloads import records, table
from tests.members.factories import MemberFactory, TagFactory

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
        "*******1234",
        str(org.guide_a1),
    )
    assert wang["lifecycle stage"] == "会员"


def test_member_list_download_follows_the_filters(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    rows = records(client.get("/hq/members/", {"q": "王小美", "format": "csv"}))
    assert [(r["name"], r["phone"]) for r in rows] == [("王小美", "*******1234")]
    rows = records(client.get("/hq/members/", {"store": org.b1.pk, "format": "xlsx"}))
    assert [r["name"] for r in rows] == ["钱五"]
    # The permission to see a full number (one at a time, audited) never unmasks a file.
    org.hq_operator.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    rows = records(client.get("/hq/members/", {"q": "王小美", "format": "xlsx"}))
    assert rows[0]["phone"] == "*******1234"


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


@pytest.mark.parametrize("file_format", FORMATS)
def test_task_list_downloads_scoped_and_filtered(
    client: Client, org: Org, file_format: str
) -> None:
    due = date(2026, 3, 5)
    common = {"kind": TaskKind.HQ, "due_on": due}
    FollowUpTask.objects.create(
        member=org.member_of_guide_a1, guide=org.guide_a1, title="回访", detail="问问口红", **common
    )
    FollowUpTask.objects.create(
        member=org.member_of_guide_a1_other,
        guide=org.guide_a1_other,
        title="已做完",
        status=TaskStatus.DONE,
        outcome=TaskOutcome.REACHED,
        done_at=datetime(2026, 3, 4, 9, 0, tzinfo=SHANGHAI),
        **common,
    )
    FollowUpTask.objects.create(member=org.member_b1, guide=org.guide_b1, title="北京", **common)
    client.force_login(org.store_manager_a1)
    rows = table(client.get("/hq/tasks/", {"format": file_format}))  # open tasks by default
    assert rows == [
        ["截止", "任务", "客户", "导购", "状态"],
        ["2026-03-05", "回访 · 问问口红", "王小美", str(org.guide_a1), "待办"],
    ]
    rows = table(client.get("/hq/tasks/", {"status": "", "format": file_format}))
    assert sorted(r[1] for r in rows[1:]) == ["回访 · 问问口红", "已做完"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_guide_leaderboard_and_pools_download_scoped(
    client: Client, org: Org, file_format: str
) -> None:
    client.force_login(org.store_manager_a1)
    board = table(client.get("/hq/guides/", {"format": file_format}))
    assert board[0][:3] == ["#", "导购", "门店"]
    assert sorted(r[1] for r in board[1:]) == sorted([str(org.guide_a1), str(org.guide_a1_other)])
    assert {r[2] for r in board[1:]} == {"上海南京西路店"}
    pools = table(client.get("/hq/guides/", {"table": "pools", "format": file_format}))
    assert pools[1:] == [["上海南京西路店", "1", "2"]]
    client.force_login(org.hq_operator)
    pools = table(client.get("/hq/guides/", {"table": "pools", "format": file_format}))
    assert [r[0] for r in pools[1:]] == ["北京三里屯店", "杭州湖滨店", "上海南京西路店"]
    board = table(client.get("/hq/guides/", {"store": org.b1.pk, "format": file_format}))
    assert [r[1] for r in board[1:]] == [str(org.guide_b1)]


@pytest.mark.parametrize("file_format", FORMATS)
def test_merge_history_downloads(client: Client, org: Org, file_format: str) -> None:
    at = datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)
    merge = MemberMerge.objects.create(
        kept=org.member_a2, dropped=org.member_b1, merged_by=org.hq_admin
    )
    MemberMerge.objects.filter(pk=merge.pk).update(merged_at=at)
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/members/merges/", {"format": file_format}))
    assert rows == [
        ["合并时间", "保留会员", "被合并会员", "发起人", "状态"],
        [
            "2026-03-01 10:00",
            f"#{org.member_a2.pk} 赵四",
            f"#{org.member_b1.pk} 钱五",
            str(org.hq_admin),
            "",
        ],
    ]


@pytest.mark.parametrize("file_format", FORMATS)
def test_tag_holders_download_scoped(client: Client, org: Org, file_format: str) -> None:
    tag = TagFactory(name="爱口红")
    for member in (org.member_of_guide_a1, org.member_b1):
        member_tag_add(member=member, tag=tag, actor=org.hq_admin)
    client.force_login(org.hq_operator)
    rows = table(client.get(f"/hq/tags/{tag.pk}/members/", {"format": file_format}))
    assert rows[0] == ["会员", "门店", "来源", "发起人", "添加"]
    assert sorted(r[:3] for r in rows[1:]) == [
        ["王小美", "上海南京西路店", "员工"],
        ["钱五", "北京三里屯店", "员工"],
    ]
    assert {r[3] for r in rows[1:]} == {str(org.hq_admin)}
    # The page is head office's: a store manager downloads nothing.
    client.force_login(org.store_manager_a1)
    assert client.get(f"/hq/tags/{tag.pk}/members/", {"format": file_format}).status_code == 403
