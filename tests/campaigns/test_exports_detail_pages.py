"""A broadcast's guide tasks and a campaign's members download as CSV and XLSX: every
row, as the page shows them, scoped to what the viewer may see."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, GuideSendTask, JourneyEnrollment
from tests.campaigns.test_funnel import make_broadcast
from tests.conftest import Org
from tests.downloads import table
from tests.members.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMATS = ("csv", "xlsx")
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("file_format", FORMATS)
def test_broadcast_guide_tasks_download_scoped(client: Client, org: Org, file_format: str) -> None:
    broadcast = make_broadcast(org, "会员日", store=org.a1, channel="wecom_moment")
    confirmed = datetime(2026, 3, 1, 18, 30, tzinfo=SHANGHAI)
    GuideSendTask.objects.create(
        broadcast=broadcast, guide=org.guide_a1, recipients=12, confirmed_at=confirmed
    )
    GuideSendTask.objects.create(broadcast=broadcast, guide=org.guide_a1_other, recipients=3)
    GuideSendTask.objects.create(broadcast=broadcast, guide=org.guide_b1, recipients=9)
    url = f"/hq/broadcasts/{broadcast.pk}/"
    client.force_login(org.store_manager_a1)
    rows = table(client.get(url, {"table": "guide-tasks", "format": file_format}))
    assert rows == [
        ["导购", "客户", "企业微信已发送"],
        [str(org.guide_a1), "12", "2026-03-01 18:30"],
        [str(org.guide_a1_other), "3", "尚未发送"],
    ]
    assert 'data-testid="export-links-guide-tasks"' in client.get(url).content.decode()
    client.force_login(org.hq_operator)
    rows = table(client.get(url, {"table": "guide-tasks", "format": file_format}))
    assert [row[0] for row in rows[1:]] == [
        str(org.guide_a1),
        str(org.guide_a1_other),
        str(org.guide_b1),
    ]


@pytest.mark.parametrize("file_format", FORMATS)
def test_campaign_members_download_every_entrant(
    client: Client, org: Org, file_format: str
) -> None:
    now = timezone.now()
    entered = datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)

    def campaign(store: object) -> Campaign:
        return Campaign.objects.create(
            name="新会员欢迎",
            template="welcome",
            starts_at=now - timedelta(days=10),
            ends_at=now + timedelta(days=30),
            created_by=org.hq_operator,
            trigger="registered",
            status="active",
            store=store,
        )

    shanghai, beijing = campaign(org.a1), campaign(org.b1)
    for member in MemberFactory.create_batch(54, home_store=org.a1, name="批量"):
        JourneyEnrollment.objects.create(campaign=shanghai, member=member, entered_at=entered)
    JourneyEnrollment.objects.create(
        campaign=shanghai,
        member=org.member_of_guide_a1,
        entered_at=entered + timedelta(hours=1),
        state="exited",
        exit_reason="converted",
        position=2,
        finished_at=entered + timedelta(hours=5),
    )
    JourneyEnrollment.objects.create(campaign=beijing, member=org.member_b1, entered_at=entered)
    client.force_login(org.store_manager_a1)
    rows = table(client.get(f"/hq/campaigns/{shanghai.pk}/", {"format": file_format}))
    assert rows[0] == ["会员", "状态", "步骤", "已进入", "下一步时间", "完成时间"]
    assert len(rows) == 1 + 55  # past the 50 of a page
    assert rows[1] == ["王小美", "已退出 · 购买过", "2", "2026-03-01 10:00", "", "2026-03-01 14:00"]
    assert {row[0] for row in rows[2:]} == {"批量"}
    # Beijing's campaign is not the manager's.
    assert client.get(f"/hq/campaigns/{beijing.pk}/", {"format": file_format}).status_code == 404


def test_campaign_members_over_the_cap_say_so(
    client: Client, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = timezone.now()
    campaign = Campaign.objects.create(
        name="欢迎",
        template="welcome",
        starts_at=now,
        ends_at=now + timedelta(days=3),
        created_by=org.hq_operator,
        trigger="registered",
    )
    JourneyEnrollment.objects.create(campaign=campaign, member=org.member_b1, entered_at=now)
    monkeypatch.setattr("members.views.downloads.EXPORT_LIMIT", 0)
    client.cookies["scrm_language"] = "en"  # the message, whatever the translation
    client.force_login(org.hq_operator)
    response = client.get(f"/hq/campaigns/{campaign.pk}/", {"format": "csv"})
    assert response.status_code == 302 and "Content-Disposition" not in response
    page = client.get(response["Location"]).content.decode()
    assert "1 members entered: downloads hold at most 0." in page


@pytest.mark.parametrize("file_format", FORMATS)
def test_campaign_steps_download(client: Client, org: Org, file_format: str) -> None:
    from campaigns.models import JourneyStep, Material

    now = timezone.now()
    campaign = Campaign.objects.create(
        name="新会员欢迎",
        template="welcome",
        starts_at=now,
        ends_at=now + timedelta(days=30),
        created_by=org.hq_operator,
        trigger="registered",
    )
    material = Material.objects.create(kind="text", title="欢迎", body="欢迎")
    JourneyStep.objects.create(
        campaign=campaign, position=1, kind="send", channel="inbox", material=material
    )
    JourneyStep.objects.create(campaign=campaign, position=2, kind="wait", wait_hours=24)
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    rows = table(
        client.get(f"/hq/campaigns/{campaign.pk}/", {"table": "steps", "format": file_format})
    )
    assert rows[0] == [
        "#",
        "Step",
        "Entered",
        "Sent",
        "Waiting",
        "Control group",
        "Not sent",
        "Bought after",
    ]
    assert [r[:2] for r in rows[1:]] == [
        ["1", "Send a message: In-app inbox · 欢迎"],
        ["2", "Wait: 24 h"],
    ]
    assert [r[2:] for r in rows[1:]] == [["0", "0", "0", "0", "", "0"]] * 2
    client.force_login(org.store_manager_a1)  # head office's campaign: not theirs
    assert (
        client.get(
            f"/hq/campaigns/{campaign.pk}/", {"table": "steps", "format": file_format}
        ).status_code
        == 404
    )
