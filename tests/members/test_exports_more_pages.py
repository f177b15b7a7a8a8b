"""The rest of the members tables download as CSV and XLSX: the member profile's
sub-tables, a guide's customers and open tasks, the tag overview, RFM, the loyalty
settings and an uploaded list's rejected rows. Every row (not the page's latest), the
page's columns, phones masked as on the page, scoped as the page is."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from members.models import (
    AutoTagRule,
    EarnRule,
    FollowUpTask,
    LifecycleChange,
    OrderLine,
    PointsKind,
    RfmMovement,
    TaskKind,
    Tier,
)
from members.profile_sections import PROFILE_TABLES
from members.services.guides import customers_transfer
from members.services.points import points_adjust
from members.services.tags import member_tag_add
from tests.conftest import Org
from tests.downloads import table
from tests.members.factories import (
    IdentityFactory,
    MemberFactory,
    OrderFactory,
    TagFactory,
    phone_identity,
)
from touchpoints.models import BehaviourEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMATS = ("csv", "xlsx")
pytestmark = pytest.mark.django_db


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("file_format", FORMATS)
def test_member_profile_tables_download_every_row(
    client: Client, org: Org, file_format: str
) -> None:
    member = org.member_of_guide_a1
    for n in range(25):  # past the 20 the page shows
        OrderFactory(member=member, external_id=f"POS{n:03d}", paid_at=at(1 + n % 20))
    refunded = OrderFactory(
        member=member,
        external_id="TM-9",
        paid_at=at(28),
        amount=Decimal("300.00"),
        refunded_amount=Decimal("100.00"),
        status="partially_refunded",
        store=org.a1,
        guide=org.guide_a1,
    )
    OrderLine.objects.create(
        order=refunded,
        sku="L1",
        product_name="口红",
        quantity=2,
        unit_price=Decimal("150"),
        amount=Decimal("300"),
    )
    phone_identity(member, "+8613800001234", source="pos")
    IdentityFactory(member=member, kind="tmall", value="tb-wang", source="tmall")
    LifecycleChange.objects.create(
        member=member, from_stage="prospect", to_stage="member", reason="注册", changed_at=at(2)
    )
    points_adjust(
        member_id=member.pk,
        kind=PointsKind.ACTIVITY,
        amount=30,
        reason="补发",
        actor=org.hq_admin,
        external_id="adj-1",
    )
    member_tag_add(member=member, tag=TagFactory(name="爱口红"), actor=org.hq_admin)
    customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.hq_admin)
    for n in range(35):  # past the 30 the page shows
        BehaviourEvent.objects.create(
            client_event_id=f"e{n}",
            member=member,
            type="scan",
            occurred_at=at(3),
            properties={"page": "/p/1"},
        )
    client.force_login(org.store_manager_a1)
    url = f"/hq/members/{member.pk}/"

    def download(key: str) -> list[list[str]]:
        return table(client.get(url, {"table": key, "format": file_format}))

    orders = download("orders")
    assert orders[0] == [
        *("支付时间", "渠道", "订单号", "门店", "业绩导购", "金额", "已退款", "状态", "商品"),
    ]
    assert len(orders) == 1 + 26
    first = orders[1]
    assert first[:5] + first[7:] == [
        *("2026-03-28 10:00", "门店POS", "TM-9", "上海南京西路店", str(org.guide_a1)),
        *("部分退款", "口红 × 2"),
    ]
    assert (Decimal(first[5]), Decimal(first[6])) == (Decimal(300), Decimal(100))
    identities = download("identities")
    assert identities[1:] == [
        ["手机号", "", "*******1234", "pos", identities[1][4]],
        ["天猫买家ID", "", "tb-wang", "tmall", identities[2][4]],
    ]
    assert download("lifecycle")[1:] == [["2026-03-02 10:00", "潜在用户", "会员", "注册"]]
    ledger = download("ledger")
    admin = str(org.hq_admin)
    assert [row[2:] for row in ledger[1:]] == [["调整", "30", "30", "adjust", "补发", admin]]
    assert [row[1:] for row in download("tag-log")[1:]] == [["爱口红", "添加", "员工", admin]]
    history = download("guide-history")
    assert [row[1:3] + row[4:] for row in history[1:]] == [
        [str(org.guide_a1), str(org.guide_a1_other), admin, ""]
    ]
    behaviour = download("behaviour")
    assert len(behaviour) == 1 + 35
    assert behaviour[1] == ["2026-03-03 10:00", "扫码", "", "page: /p/1"]
    for key in PROFILE_TABLES:  # every table answers, with its header
        assert download(key)[0]
    # Masked for those allowed to see a full number too: files are never unmasked.
    org.store_manager_a1.user_permissions.add(Permission.objects.get(codename="view_full_phone"))
    assert download("identities")[1][2] == "*******1234"
    # Another store's member is not there; an unknown table is not there either.
    other = client.get(f"/hq/members/{org.member_b1.pk}/", {"table": "orders", "format": "csv"})
    assert other.status_code == 404
    assert client.get(url, {"table": "nope", "format": file_format}).status_code == 404


def test_member_profile_offers_each_tables_links(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    body = client.get(f"/hq/members/{org.member_of_guide_a1.pk}/").content.decode()
    for key in ("identities", "orders", "lifecycle", "ledger", "tier-changes", "coupons"):
        assert f'href="?table={key}&amp;format=xlsx"' in body
    assert 'data-testid="export-links-behaviour"' in body


@pytest.mark.parametrize("file_format", FORMATS)
def test_guide_page_downloads_all_customers_and_open_tasks(
    client: Client, org: Org, file_format: str
) -> None:
    MemberFactory.create_batch(
        60, home_store=org.a1, guide=org.guide_a1, name="批量", phone="+8613911112222"
    )
    FollowUpTask.objects.create(
        member=org.member_of_guide_a1,
        guide=org.guide_a1,
        kind=TaskKind.HQ,
        title="回访",
        due_on=date(2020, 1, 2),
    )
    client.force_login(org.store_manager_a1)
    url = f"/hq/guides/{org.guide_a1.pk}/"
    rows = table(client.get(url, {"format": file_format}))
    assert rows[0] == ["名称", "手机号", "阶段", "门店"]
    assert len(rows) == 1 + 61  # past the page's 50
    assert ["王小美", "*******1234", "会员", "上海南京西路店"] in rows
    assert rows.count(["批量", "*******2222", "会员", "上海南京西路店"]) == 60
    tasks = table(client.get(url, {"table": "tasks", "format": file_format}))
    assert tasks == [["截止", "任务", "客户", "已逾期"], ["2020-01-02", "回访", "王小美", "✓"]]
    # Another store's guide is not the manager's to download.
    assert client.get(f"/hq/guides/{org.guide_b1.pk}/", {"format": "csv"}).status_code == 404


def test_guide_customers_over_the_cap_says_so(
    client: Client, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("members.views.downloads.EXPORT_LIMIT", 0)
    client.cookies["scrm_language"] = "en"  # the message, whatever the translation
    client.force_login(org.store_manager_a1)
    response = client.get(f"/hq/guides/{org.guide_a1.pk}/", {"format": "csv"})
    assert response.status_code == 302
    assert response["Location"] == f"/hq/guides/{org.guide_a1.pk}/"
    assert "Content-Disposition" not in response
    page = client.get(response["Location"]).content.decode()
    assert "1 customers: downloads hold at most 0" in page


@pytest.mark.parametrize("file_format", FORMATS)
def test_tag_overview_downloads_rules_and_each_group(
    client: Client, org: Org, file_format: str
) -> None:
    tag = TagFactory(name="爱口红", description="常买口红")
    TagFactory(name="爱香水", group=tag.group, active=False)
    AutoTagRule.objects.create(
        name="买过口红", tag=tag, rules={"op": "and", "rules": []}, active=True
    )
    for member in (org.member_of_guide_a1, org.member_b1):
        member_tag_add(member=member, tag=tag, actor=org.hq_admin)
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/tags/", {"table": f"group-{tag.group_id}", "format": file_format}))
    assert rows == [
        ["标签", "说明", "会员", "状态"],
        ["爱口红", "常买口红", "2", "启用"],
        ["爱香水", "", "0", "停用"],
    ]
    rules = table(client.get("/hq/tags/", {"table": "rules", "format": file_format}))
    assert rules == [
        ["规则", "标签", "状态", "上次运行", "添加", "移除"],
        ["买过口红", str(tag), "已启用", "", "", ""],
    ]
    assert client.get("/hq/tags/", {"table": "group-0", "format": file_format}).status_code == 404
    client.force_login(org.store_manager_a1)  # head office's page
    assert client.get("/hq/tags/", {"table": "rules", "format": file_format}).status_code == 403


@pytest.mark.parametrize("file_format", FORMATS)
def test_rfm_page_downloads_its_tables(client: Client, org: Org, file_format: str) -> None:
    today = timezone.localdate()
    RfmMovement.objects.create(day=today, from_class="", to_class="555", members=3)
    client.force_login(org.hq_operator)
    classes = table(client.get("/hq/rfm/", {"format": file_format}))
    assert classes[0] == ["分类", "R F M", "会员", "占比", "窗口内消费", "人均"]
    assert len(classes) == 1 + 8 and {row[2] for row in classes[1:]} == {"0"}
    scores = table(client.get("/hq/rfm/", {"table": "scores", "format": file_format}))
    assert [row[0] for row in scores] == ["得分", "5", "4", "3", "2", "1"]
    cells = table(client.get("/hq/rfm/", {"table": "cells", "format": file_format}))
    assert cells[0] == ["价值矩阵", "会员"] and len(cells) == 1 + 4
    moves = table(client.get("/hq/rfm/", {"table": "movements", "format": file_format}))
    assert moves == [
        ["日期", "原阶段", "新阶段", "会员"],
        [today.isoformat(), "无购买", "555", "3"],
    ]
    # A store manager's page has no movements table: nor a download of it.
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/rfm/", {"table": "movements", "format": "csv"}).status_code == 404
    assert table(client.get("/hq/rfm/", {"table": "scores", "format": "csv"}))[0][0] == "得分"


@pytest.mark.parametrize("file_format", FORMATS)
def test_loyalty_settings_download_each_table(client: Client, org: Org, file_format: str) -> None:
    Tier.objects.create(
        rank=1,
        name="金卡",
        threshold=1000,
        window_days=365,
        retain_threshold=800,
        valid_days=365,
        grace_days=30,
        free_delivery=True,
    )
    rule, _ = EarnRule.objects.update_or_create(
        event="register",
        defaults={
            "account": "activity",
            "points": 50,
            "points_per_yuan": 0,
            "daily_cap": None,
            "monthly_cap": None,
            "valid_days": None,
            "active": True,
        },
    )
    client.force_login(org.hq_admin)
    tiers = table(client.get("/hq/loyalty/", {"format": file_format}))
    assert tiers == [
        ["级别", "名称", "升级条件", "保级条件", "有效期", "宽限期", "权益"],
        ["1", "金卡", "365 天内 1000", "800", "365 天", "30 天", "免运费"],
    ]
    rules = table(client.get("/hq/loyalty/", {"table": "earn-rules", "format": file_format}))
    assert [rule.get_event_display(), "活跃积分", "50", "", "", "永不过期", "启用"] in rules
    for key in ("bonus-periods", "coupon-templates", "rewards"):
        assert len(table(client.get("/hq/loyalty/", {"table": key, "format": file_format}))) == 1
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/loyalty/", {"format": file_format}).status_code == 403


@pytest.mark.parametrize("file_format", FORMATS)
def test_upload_result_downloads_every_rejected_row(
    client: Client, org: Org, settings: Any, tmp_path: Path, file_format: str
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(org.store_manager_a1)
    lines = ["phone", "13800001234"] + [f"1399999{n:04d}" for n in range(60)] + ["12345"]
    response = client.post(
        "/hq/segments/upload/",
        {
            "name": "名单",
            "description": "",
            "store": org.a1.pk,
            "holds": "",
            "column": "",
            "file": SimpleUploadedFile("list.csv", "\n".join(lines).encode()),
        },
    )
    assert response.status_code == 302, response.content.decode()
    rows = table(client.get(response["Location"], {"format": file_format}))
    assert rows[0] == ["行号", "值", "原因"]
    assert len(rows) == 1 + 61  # past the 50 the page shows
    # A phone that matched nobody is reported masked, like every phone in a file.
    assert rows[1] == ["3", "*******0000", "没有匹配到您可见的会员。"]
    assert rows[-1] == ["63", "12345", "不是手机号。"]
    # Someone else's upload is not theirs to download.
    client.force_login(org.region_manager_a)
    assert client.get(response["Location"], {"format": file_format}).status_code == 404
