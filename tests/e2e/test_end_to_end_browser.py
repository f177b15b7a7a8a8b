"""End-to-end journeys in the Chinese UI, driven only through headless Chromium.

1. Head office: an operator imports a POS member export (GBK, Chinese headers, two bad
   rows) with the real worker, builds a segment of the imported members, drafts an SMS
   broadcast to it and submits it; an HQ admin approves it; the worker sends it through the
   sandbox gateway; the operator imports the orders that followed and sees the deliveries
   and the funnel.
2. A guide on a phone-sized screen works a task head office handed out: opens the
   customer card from the task, copies the suggested message for WeCom, marks the task
   done; the list updates and the store manager sees the completion.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Max
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.gateways import close_outside_connection
from campaigns.models import (
    Broadcast,
    Conversion,
    Delivery,
    MarketingOptOut,
    Material,
    SandboxCall,
)
from campaigns.services.consent import unsubscribe_token
from campaigns.tasks import refresh_attribution
from members.models import FollowUpTask, Member, Order, Segment, TaskStatus
from tests.conftest import Org, wait_for
from tests.e2e.test_guides_browser import _fits_the_screen, _sign_in
from tests.members.factories import MemberFactory
from touchpoints.models import ImportJob, ImportRowError

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Twenty-eight customers of the two Shanghai/Hangzhou stores, as a POS exports them.
NAMES = [
    "林晓雯", "陈思远", "周雨桐", "吴浩然", "郑佳怡", "孙梓涵", "冯一鸣", "何欣然",
    "许嘉宁", "高子轩", "罗诗琪", "梁俊杰", "宋雨萱", "唐文博", "韩若曦", "曹宇航",
    "邓可馨", "彭子墨", "蒋思琪", "谢天佑", "沈梦琪", "田浩宇", "潘雅婷", "杜明轩",
    "叶清妍", "程子豪", "袁诗涵", "苏立恒",
]  # fmt: skip
NO_PHONE = "苏立恒"  # only a membership card: SMS cannot reach them
UNSUBSCRIBER = "林晓雯"  # opens the unsubscribe link of an earlier SMS
BUYERS = {"陈思远": "299.00", "周雨桐": "158.50", "吴浩然": "88.00"}


@pytest.fixture(autouse=True)
def _close_sandbox() -> Iterator[None]:
    yield
    close_outside_connection()


def _context(browser: Any, *, phone: bool = False) -> Any:
    if phone:
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
    else:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = _context(browser)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = _context(browser, phone=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def _member_export(path: Path) -> Path:
    """A POS member export in GBK: 28 good rows (one without a phone) and two bad ones."""
    lines = ["会员卡号,手机号,姓名,性别,生日,城市,门店编码,导购工号,开卡日期"]
    for n, name in enumerate(NAMES):
        mobile = "" if name == NO_PHONE else f"1391234{n:04d}"
        gender = "女" if n % 2 == 0 else "男"
        store, city = ("SH001", "上海") if n % 3 else ("HZ001", "杭州")
        lines.append(
            f"VIP{2026000 + n},{mobile},{name},{gender},1990-03-{n + 1:02d},{city},{store},,"
            "2026-11-01 10:00:00"
        )
        if n == 9:  # row 12: a store code that does not exist
            lines.append("VIP2026900,13912349900,错误甲,女,1991-05-06,上海,SH999,,")
        if n == 19:  # row 23: 30 February
            lines.append("VIP2026901,13912349901,错误乙,女,1990-02-30,上海,SH001,,")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


def _order_export(path: Path, paid_at: datetime) -> Path:
    """POS receipts paid after the SMS went out: three from recipients, one from the
    customer who unsubscribed (not sent, so it converts nothing)."""
    card = {name: f"VIP{2026000 + n}" for n, name in enumerate(NAMES)}
    when = timezone.localtime(paid_at).strftime("%Y-%m-%d %H:%M:%S")
    lines = ["小票号,会员卡号,销售时间,实收金额,门店编码,商品名称"]
    for n, (name, amount) in enumerate([*BUYERS.items(), (UNSUBSCRIBER, "66.00")]):
        lines.append(f"T20261207{n:04d},{card[name]},{when},{amount},SH001,燕麦拿铁礼盒")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


def _upload(page: Any, base: str, kind: str, path: Path) -> ImportJob:
    page.goto(f"{base}/hq/imports/")
    assert page.locator("h2", has_text="导入文件").count() == 1
    form = page.locator("[data-testid=import-form]")
    form.locator("select[name=kind]").select_option(kind)
    form.locator("select[name=source]").select_option("pos")
    form.locator("input[name=file]").set_input_files(str(path))
    with page.expect_navigation():
        form.locator("button[type=submit]", has_text="上传并导入").click()
    assert "已上传，导入将在后台进行。" in page.content()
    # The page polls its progress every 2 s until the worker has finished.
    page.wait_for_selector("[data-testid=import-progress][data-status=done]", timeout=45_000)
    return ImportJob.objects.get(original_name=path.name)


@pytest.mark.worker
def test_head_office_imports_segments_broadcasts_and_sees_the_funnel(
    live_server: Any,
    org: Org,
    celery_worker: subprocess.Popen[str],
    desk: Any,
    browser: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Approving between 22:00 and 08:00 only schedules the send for the morning (beat
    # starts it); the journey runs at any hour, so the approval sends at once here.
    monkeypatch.setattr("campaigns.services.broadcasts.after_quiet_hours", lambda moment: moment)
    base = live_server.url
    pool_before = Member.objects.count()

    # 1. Import the POS member export.
    _sign_in(desk, base, "/hq/login/", "hq_operator")
    job = _upload(desk, base, "members", _member_export(tmp_path / "南京西路店会员.csv"))
    progress = desk.locator("[data-testid=import-progress]")
    assert progress.locator("strong").inner_text() == "已完成"
    assert "30 / 30 行" in progress.inner_text()
    assert desk.locator("[data-testid=count-created]").inner_text() == "28"
    assert desk.locator("[data-testid=count-rejected]").inner_text() == "2"
    assert (job.status, job.encoding.lower(), job.created, job.rejected) == (
        "done",
        "gb18030",
        28,
        2,
    )
    assert Member.objects.count() == pool_before + 28
    assert set(Member.objects.filter(source_channel="pos").values_list("name", flat=True)) == set(
        NAMES
    )
    assert not Member.objects.filter(name__in=["错误甲", "错误乙"]).exists()
    assert list(
        ImportRowError.objects.filter(job=job)
        .order_by("row_number")
        .values_list("row_number", "column", "value", "reason")
    ) == [
        (12, "门店编码", "SH999", "未知的门店编码。"),
        (23, "生日", "1990-02-30", "“1990-02-30”不是有效日期。"),
    ]
    rejected = desk.locator("section", has_text="被拒绝的行").locator("tbody tr")
    assert [rejected.nth(i).inner_text().split("\t") for i in range(rejected.count())] == [
        ["12", "门店编码", "SH999", "未知的门店编码。"],
        ["23", "生日", "1990-02-30", "“1990-02-30”不是有效日期。"],
    ]
    # The downloadable error report lists the same rows.
    report_link = desk.locator("a", has_text="错误报告（CSV）").get_attribute("href")
    report = desk.request.get(f"{base}{report_link}").text().lstrip("\ufeff").splitlines()
    assert report == [
        "行号,列,值,原因",
        "12,门店编码,SH999,未知的门店编码。",
        "23,生日,1990-02-30,“1990-02-30”不是有效日期。",
    ]

    # One customer opens the unsubscribe link of an earlier SMS on their phone.
    unsubscriber = Member.objects.get(name=UNSUBSCRIBER)
    member_phone = _context(browser, phone=True)
    link = member_phone.new_page()
    link.goto(f"{base}/u/{unsubscribe_token(member_id=unsubscriber.pk, channel='sms')}")
    with link.expect_navigation():
        link.click("[data-testid=unsubscribe-confirm]")
    assert link.locator("h1").inner_text() == "已退订"
    member_phone.close()
    assert MarketingOptOut.objects.filter(member=unsubscriber, channel="sms").exists()

    # 2. A segment of the members the POS brought in.
    desk.goto(f"{base}/hq/segments/new/")
    condition = desk.locator("[data-path='rules[0]']")
    condition.locator("[data-role=field]").select_option(label="来源渠道")
    condition.locator("[data-role=value]").select_option(label="门店POS")
    expect(desk.locator("[data-testid=live-count]")).to_have_text("28")
    desk.fill("#id_name", "门店POS新入会")
    with desk.expect_navigation():
        desk.click("[data-testid=segment-form] button[type=submit]", timeout=5_000)
    segment = Segment.objects.get(name="门店POS新入会")
    assert segment.size == 28
    assert segment.rules["rules"] == [
        {"field": "source_channel", "operator": "in", "value": ["pos"]}
    ]
    assert "28 位会员" in desk.locator("[data-testid=segment-size]").inner_text()

    # 3. An SMS to the segment: drafted and submitted by the operator.
    desk.goto(f"{base}/hq/broadcasts/new/")
    desk.fill("#id_name", "会员日短信")
    desk.select_option("#id_channel", label="短信")
    desk.select_option("#id_segment", label="门店POS新入会")
    desk.fill("#id_title", "会员日")
    desk.fill("#id_body", "{name}您好，本周六会员日全场双倍积分，欢迎到店。")
    with desk.expect_navigation():
        desk.click("[data-testid=broadcast-form] button[type=submit]")
    assert "草稿已保存：请核对人群后提交审批。" in desk.content()
    broadcast = Broadcast.objects.get(name="会员日短信")
    preview = desk.locator("[data-testid=preview]").inner_text()
    assert "26 人将收到" in preview and "28" in preview
    assert "1 · 已退订" in preview and "1 · 该渠道无可用身份" in preview
    with desk.expect_navigation():
        desk.click("[data-testid=submit]")
    assert desk.locator("[data-testid=status]").inner_text() == "待审批"
    assert desk.locator("[data-testid=approve]").count() == 0  # not the drafter's to approve
    broadcast.refresh_from_db()
    assert broadcast.status == "pending"
    assert not Delivery.objects.filter(broadcast=broadcast).exists()

    # 4. An HQ admin approves it; the worker sends it.
    desk.context.clear_cookies()
    _sign_in(desk, base, "/hq/login/", "hq_admin")
    desk.goto(f"{base}/hq/broadcasts/{broadcast.pk}/")
    with desk.expect_navigation():
        desk.click("[data-testid=approve]")
    assert "已审批。" in desk.content()
    deliveries = Delivery.objects.filter(broadcast=broadcast)
    # The worker's chunk that writes the last outcome closes the broadcast itself.
    wait_for(lambda: Broadcast.objects.get(pk=broadcast.pk).status == "done", timeout=30)
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.approved_by_id) == ("done", org.hq_admin.pk)
    assert not deliveries.filter(status="planned").exists()
    assert deliveries.filter(status="sent").count() == 26
    assert dict(deliveries.filter(status="suppressed").values_list("member__name", "reason")) == {
        UNSUBSCRIBER: "opted_out",
        NO_PHONE: "no_identity",
    }
    calls = SandboxCall.objects.filter(gateway="sms", outcome="sent")
    assert calls.count() == 26
    assert calls.filter(content__startswith="陈思远您好，本周六会员日").count() == 1

    # 5. The orders that followed, imported the same way; attribution runs on the worker.
    last_sent = deliveries.filter(status="sent").aggregate(at=Max("sent_at"))["at"]
    paid_at = last_sent.replace(microsecond=0) + timedelta(seconds=2)
    desk.context.clear_cookies()
    _sign_in(desk, base, "/hq/login/", "hq_operator")
    orders_job = _upload(
        desk, base, "orders", _order_export(tmp_path / "南京西路店小票.csv", paid_at)
    )
    assert (orders_job.created, orders_job.rejected) == (4, 0)
    assert Order.objects.filter(member__source_channel="pos").count() == 4
    refresh_attribution.delay()
    wait_for(lambda: Conversion.objects.filter(broadcast=broadcast).count() == 3, timeout=30)
    assert sorted(
        Conversion.objects.filter(broadcast=broadcast).values_list("order__member__name", "revenue")
    ) == sorted((name, Decimal(amount)) for name, amount in BUYERS.items())

    # 6. The operator sees the deliveries and the funnel.
    desk.goto(f"{base}/hq/broadcasts/{broadcast.pk}/")
    assert desk.locator("[data-testid=status]").inner_text() == "已发送"
    sent_line = desk.locator("[data-testid=deliveries] p").first.inner_text()
    assert sent_line == "已发送 26 · 待发送 0 · 失败 0 · 未发送 2"
    reasons = desk.locator("[data-testid=suppression-reasons]").inner_text()
    assert reasons == "该渠道无可用身份: 1 · 已退订: 1"
    converted = desk.locator("[data-testid=converted]").inner_text()
    assert "转化订单 3" in converted and "¥545.50" in converted
    desk.click("[data-testid=funnel-link]")
    desk.wait_for_selector("#funnel-chart[data-rendered]")
    assert desk.locator("h1").inner_text() == "漏斗：会员日短信"
    assert desk.locator("[data-testid=funnel-audience]").inner_text() == "28"
    assert desk.locator("[data-testid=funnel-suppressed]").inner_text() == "2"
    assert desk.locator("[data-testid=funnel-sent]").inner_text() == "26"
    assert desk.locator("[data-testid=funnel-converted]").inner_text() == "3"
    assert desk.locator("[data-testid=funnel-revenue]").inner_text() == "¥545.50"
    assert "转化订单" in desk.locator("[data-testid=funnel-totals]").inner_text()


def test_a_guide_works_a_head_office_task_on_the_phone(
    live_server: Any, org: Org, desk: Any, phone: Any
) -> None:
    base = live_server.url
    wang = org.member_of_guide_a1
    for name in ("顾晓琳", "严子航"):
        MemberFactory(name=name, home_store=org.a1, guide=org.guide_a1)
    Segment.objects.create(
        name="南京西路店会员",
        rules={
            "op": "and",
            "rules": [{"field": "home_store", "operator": "in", "value": [org.a1.pk]}],
        },
    )
    Material.objects.create(
        kind="text",
        title="会员日邀约",
        body="{name}您好，本周六会员日双倍积分，欢迎到店。",
        quick_reply=True,
    )

    # Head office hands a task to the guides of every customer of the store.
    _sign_in(desk, base, "/hq/login/", "hq_operator")
    desk.goto(f"{base}/hq/tasks/new/")
    desk.select_option("#id_segment", label="南京西路店会员")
    desk.fill("#id_title", "会员日邀约")
    desk.fill("#id_detail", "发会员日邀约，约到店")
    desk.fill("#id_due_on", timezone.localdate().isoformat())
    with desk.expect_navigation():
        desk.click("button[type=submit]:has-text('下发给导购')")
    # 王小美 and two more with guide_a1, 李小红 with the other guide; 张三 has no guide.
    assert "已向导购下发 4 个任务；1 位客户没有导购。" in desk.content()
    tasks = FollowUpTask.objects.filter(title="会员日邀约", due_on=timezone.localdate())
    assert sorted(tasks.values_list("member__name", "guide__username")) == sorted(
        [
            ("王小美", "guide_a1"),
            ("顾晓琳", "guide_a1"),
            ("严子航", "guide_a1"),
            ("李小红", "guide_a1_other"),
        ]
    )
    task = tasks.get(member=wang)

    # The guide's phone: today's three tasks.
    _sign_in(phone, base, "/m/login/", "guide_a1")
    assert phone.url == f"{base}/m/"
    assert phone.locator("[data-testid=tab-tasks] .m-count").inner_text() == "3"
    phone.click("[data-testid=tab-tasks]")
    phone.wait_for_load_state()
    _fits_the_screen(phone)
    assert phone.locator("header strong").first.inner_text() == "跟进任务"
    items = phone.locator("[data-testid=task-list] li")
    assert items.count() == 3
    listed = items.all_inner_texts()
    assert all("会员日邀约 · 发会员日邀约，约到店" in text for text in listed)
    assert sorted(text.split("\n")[1].split(" · ")[0] for text in listed) == sorted(
        ["王小美", "顾晓琳", "严子航"]
    )

    # Open the task, then the customer's card from it.
    items.filter(has_text="王小美").locator("a").click()
    phone.wait_for_load_state()
    assert phone.url == f"{base}/m/tasks/{task.pk}/"
    assert "待办" in phone.locator("[data-testid=task]").inner_text()
    phone.locator("[data-testid=task] a", has_text="王小美").click()
    phone.wait_for_load_state()
    assert phone.url == f"{base}/m/customers/{wang.pk}/"
    _fits_the_screen(phone)
    assert phone.locator("[data-testid=customer-card] h1").inner_text() == "王小美"
    follow_ups = phone.locator("#tasks")
    assert follow_ups.locator("h2").inner_text() == "跟进"
    assert "会员日邀约" in follow_ups.inner_text()

    # The suggested message, filled in for her, copied to paste into WeCom.
    reply = phone.locator("[data-testid=quick-reply]").filter(has_text="会员日邀约")
    expect(reply.locator("[data-testid=reply-text]")).to_have_text(
        "王小美您好，本周六会员日双倍积分，欢迎到店。"
    )
    reply.locator("[data-testid=copy-reply]", has_text="复制").click()
    expect(reply.locator("[data-copy-status]")).to_have_text("已复制：请到企业微信中粘贴")
    assert (
        phone.evaluate("navigator.clipboard.readText()")
        == "王小美您好，本周六会员日双倍积分，欢迎到店。"
    )

    # Back to the task from the card: sent a message, done.
    follow_ups.locator(f"a[href='/m/tasks/{task.pk}/']").click()
    phone.wait_for_load_state()
    form = phone.locator("[data-testid=task-done-form]")
    assert form.locator("legend").inner_text() == "跟进结果如何？"
    form.locator("label.m-radio", has_text="已发消息").click()
    form.locator("textarea[name=note]").fill("已发会员日邀约，周六到店")
    with phone.expect_navigation():
        form.locator("button[type=submit]", has_text="标记完成").click()
    assert phone.url == f"{base}/m/tasks/"
    assert "任务已完成，辛苦了！" in phone.content()
    task.refresh_from_db()
    assert (task.status, task.outcome, task.outcome_note) == (
        TaskStatus.DONE,
        "messaged",
        "已发会员日邀约，周六到店",
    )
    assert task.done_at is not None
    assert tasks.filter(status=TaskStatus.OPEN).count() == 3  # the others are untouched

    # The list updates: two left today, hers under 已完成 with its outcome.
    assert phone.locator("[data-testid=tab-tasks] .m-count").inner_text() == "2"
    remaining = phone.locator("[data-testid=task-list] li")
    assert remaining.count() == 2
    assert "王小美" not in " ".join(remaining.all_inner_texts())
    phone.click("nav.m-seg a:has-text('已完成')")
    phone.wait_for_load_state()
    done = phone.locator("[data-testid=task-list] li")
    assert done.count() == 1
    assert "王小美" in done.inner_text() and "已发消息" in done.inner_text()

    # The store manager sees it done, and counted on the guides' leaderboard.
    desk.context.clear_cookies()
    _sign_in(desk, base, "/hq/login/", "manager_a1")
    desk.goto(f"{base}/hq/tasks/?status=done")
    rows = desk.locator("[data-testid=task-table] tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[2:] == ["王小美", str(org.guide_a1), "已完成 · 已发消息"]
    desk.goto(f"{base}/hq/guides/")
    board = desk.locator("[data-testid=leaderboard] tbody tr").filter(has_text=str(org.guide_a1))
    # Columns: #, guide, store, sales, orders, customers, new this month, tasks done, due.
    figures = board.locator("td").all_inner_texts()
    assert (figures[7], figures[8]) == ("1", "2")
