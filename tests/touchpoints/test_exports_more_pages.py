"""The rest of the touchpoint tables download as CSV and XLSX: a touchpoint's guide
rotation and events, the feedback page's three tables, tickets, event clients and the
import column mappings. Every row, the page's filters and the viewer's scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import Org
from tests.downloads import table
from touchpoints.models import (
    BehaviourEvent,
    Channel,
    EventClient,
    FeedbackCategory,
    ImportMapping,
    QrCode,
    QrCodeGuide,
    Survey,
    SurveyResponse,
    Ticket,
    Touchpoint,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMATS = ("csv", "xlsx")
pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(db: None) -> Channel:
    return Channel.objects.create(kind="wecom", name="企业微信", code="wecom")


@pytest.mark.parametrize("file_format", FORMATS)
def test_touchpoint_page_downloads_rotation_and_every_event_in_scope(
    client: Client, org: Org, channel: Channel, file_format: str
) -> None:
    place = Touchpoint.objects.create(
        channel=channel, kind="qr_code", name="上海活码", code="qr-a1", store=org.a1
    )
    qr = QrCode.objects.create(touchpoint=place)
    QrCodeGuide.objects.create(qr_code=qr, guide=org.guide_a1, position=0, daily_cap=20)
    QrCodeGuide.objects.create(qr_code=qr, guide=org.guide_a1_other, position=1)
    at = datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)
    for n in range(25):  # past the 20 the page shows
        BehaviourEvent.objects.create(
            client_event_id=f"a{n}",
            member=org.member_of_guide_a1,
            type="scan",
            occurred_at=at,
            touchpoint=place,
        )
    BehaviourEvent.objects.create(
        client_event_id="b1", member=org.member_b1, type="scan", occurred_at=at, touchpoint=place
    )
    client.force_login(org.store_manager_a1)
    url = f"/hq/touchpoints/{place.pk}/"
    events = table(client.get(url, {"format": file_format}))
    assert events[0] == ["时间", "事件", "会员"]
    # Another store's member scanning this code is not the manager's to see.
    assert events[1:] == [["2026-03-01 09:00", "扫码", "王小美"]] * 25
    rotation = table(client.get(url, {"table": "rotation", "format": file_format}))
    assert rotation == [
        ["#", "导购", "每日上限", "今日客户", "轮换下一位"],
        ["1", str(org.guide_a1), "20", "0", "✓"],
        ["2", str(org.guide_a1_other), "不限", "0", ""],
    ]
    client.force_login(org.hq_operator)
    assert len(table(client.get(url, {"format": file_format}))) == 1 + 26


@pytest.mark.parametrize("file_format", FORMATS)
def test_feedback_page_downloads_its_three_tables_for_the_dates(
    client: Client, org: Org, file_format: str
) -> None:
    survey = Survey.objects.create(
        name="购后NPS", kind="nps", trigger="after_purchase", question="您会推荐我们吗？"
    )
    service = FeedbackCategory.objects.create(name="服务态度")
    day = datetime(2026, 3, 2, 15, 0, tzinfo=SHANGHAI)
    for n, (member, store) in enumerate(
        [(org.member_of_guide_a1, org.a1)] * 12 + [(org.member_b1, org.b1)]
    ):
        answer = SurveyResponse.objects.create(
            survey=survey,
            member=member,
            store=store,
            score=2,
            negative=True,
            comment=f"等太久{n}",
            submitted_at=day,
        )
        answer.categories.set([service])
    SurveyResponse.objects.create(  # outside the dates asked for
        survey=survey,
        member=org.member_of_guide_a1,
        store=org.a1,
        score=1,
        negative=True,
        submitted_at=day - timedelta(days=10),
    )
    ticket = Ticket.objects.create(
        member=org.member_of_guide_a1,
        store=org.a1,
        source="review",
        subject="差评",
        category=service,
        due_at=day,
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=day)
    client.force_login(org.store_manager_a1)
    dates = {"from": "2026-03-01", "to": "2026-03-05", "format": file_format}
    problems = table(client.get("/hq/feedback/", dates))
    assert problems == [["#", "分类", "回答数"], ["1", "服务态度", "12"]]
    tickets = table(client.get("/hq/feedback/", {**dates, "table": "tickets"}))
    assert tickets == [["#", "分类", "工单"], ["1", "服务态度", "1"]]
    negative = table(client.get("/hq/feedback/", {**dates, "table": "negative"}))
    assert negative[0] == ["时间", "问卷", "得分", "会员", "门店", "评论"]
    assert len(negative) == 1 + 12  # past the 10 the page shows; not Beijing's
    assert negative[1][:5] == ["2026-03-02 15:00", "购后NPS", "2", "王小美", "上海南京西路店"]
    assert sorted(row[5] for row in negative[1:]) == sorted(f"等太久{n}" for n in range(12))


@pytest.mark.parametrize("file_format", FORMATS)
def test_tickets_download_scoped_and_filtered(client: Client, org: Org, file_format: str) -> None:
    due = datetime(2030, 1, 1, 12, 0, tzinfo=SHANGHAI)
    Ticket.objects.create(
        member=org.member_of_guide_a1, store=org.a1, source="review", subject="差评", due_at=due
    )
    Ticket.objects.create(
        member=org.member_of_guide_a1,
        store=org.a1,
        source="review",
        subject="已解决",
        due_at=due,
        status="resolved",
    )
    Ticket.objects.create(
        member=org.member_b1, store=org.b1, source="review", subject="北京", due_at=due
    )
    client.force_login(org.store_manager_a1)
    rows = table(client.get("/hq/tickets/", {"status": "open", "format": file_format}))
    assert rows[0] == [
        *("#", "主题", "分类", "会员", "门店或部门", "处理人", "状态", "截止", "已逾期"),
    ]
    assert [row[1:] for row in rows[1:]] == [
        ["差评", "", "王小美", "上海南京西路店", "", "待处理", "2030-01-01 12:00", ""]
    ]
    every = table(client.get("/hq/tickets/", {"format": file_format}))
    assert sorted(row[1] for row in every[1:]) == sorted(["已解决", "差评"])


@pytest.mark.parametrize("file_format", FORMATS)
def test_event_clients_and_mappings_download(
    client: Client, org: Org, channel: Channel, file_format: str
) -> None:
    EventClient.objects.create(name="小程序", channel=channel, key_hash="x" * 64, key_hint="ab12")
    client.force_login(org.hq_admin)
    assert table(client.get("/hq/event-clients/", {"format": file_format})) == [
        ["名称", "渠道", "密钥尾号", "状态"],
        ["小程序", "企业微信", "…ab12", "启用"],
    ]
    mappings = table(client.get("/hq/imports/mappings/", {"format": file_format}))
    assert mappings[0] == ["来源", "数据", "字段", "更新时间", "发起人"]
    expected = [
        [m.get_source_display(), m.get_kind_display(), str(len(m.columns))]
        for m in ImportMapping.objects.order_by("kind", "source")
    ]
    assert [row[:3] for row in mappings[1:]] == expected and expected
    client.force_login(org.store_manager_a1)  # head office's pages
    assert client.get("/hq/event-clients/", {"format": file_format}).status_code == 403
    assert client.get("/hq/imports/mappings/", {"format": file_format}).status_code == 403


def test_touchpoint_events_over_the_cap_say_so(
    client: Client, org: Org, channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = Touchpoint.objects.create(channel=channel, kind="qr_code", name="码", code="c1")
    BehaviourEvent.objects.create(
        client_event_id="a",
        member=org.member_b1,
        type="scan",
        occurred_at=timezone.now(),
        touchpoint=place,
    )
    monkeypatch.setattr("members.views.downloads.EXPORT_LIMIT", 0)
    client.cookies["scrm_language"] = "en"  # the message, whatever the translation
    client.force_login(org.hq_operator)
    response = client.get(f"/hq/touchpoints/{place.pk}/", {"format": "xlsx"})
    assert response.status_code == 302 and "Content-Disposition" not in response
    assert (
        "1 events: downloads hold at most 0." in client.get(response["Location"]).content.decode()
    )
