"""The board's steps 7–9: campaigns running and broadcasts waiting, members on journeys
and messages sent today, orders and revenue attributed this week — each with its trend,
scoped to what the user may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Broadcast, Campaign, Conversion, JourneyEnrollment
from campaigns.services.attribution import attribution_refresh
from campaigns.services.funnel import funnel_refresh
from tests.campaigns.test_funnel import buy, deliver, make_broadcast
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def figures(client: Any, user: Any) -> dict[str, Any]:
    client.cookies["scrm_language"] = "en"
    client.force_login(user)
    response = client.get("/hq/")
    assert response.status_code == 200
    return {
        str(figure.label): figure
        for item in response.context["board"][6:9]
        for figure in item["figures"]
    }


def test_steps_seven_to_nine_show_live_figures_and_trends(org: Org, client: Any) -> None:
    now = timezone.now()
    campaign = Campaign.objects.create(
        name="新会员欢迎",
        template="welcome",
        starts_at=now - timedelta(days=10),
        ends_at=now + timedelta(days=30),
        created_by=org.hq_operator,
        trigger="registered",
        status="active",
    )
    JourneyEnrollment.objects.create(campaign=campaign, member=org.member_b1, entered_at=now)
    waiting = make_broadcast(org, "待审批", store=org.a1)
    Broadcast.objects.filter(pk=waiting.pk).update(status="pending")
    today = make_broadcast(org, "今日群发")
    deliver(today, org.member_of_guide_a1, now)
    deliver(today, org.member_b1, now)
    earlier = make_broadcast(org, "上周群发")
    deliver(earlier, org.member_a2, now - timedelta(days=8))
    # One order this week, two the week before (on the a2 and b1 members).
    buy(org, org.member_of_guide_a1, now + timedelta(minutes=1), "300.00")
    buy(org, org.member_a2, now - timedelta(days=7, hours=23), "100.00")
    attribution_refresh(now=now + timedelta(minutes=2))
    funnel_refresh(now=now + timedelta(minutes=2))
    this_monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    older_day = timezone.localdate(now - timedelta(days=7, hours=23))
    # 0 early in the week (both orders in this one), 2 on a Monday morning, else 1.
    weeks_back = (this_monday - (older_day - timedelta(days=older_day.weekday()))).days // 7

    seen = figures(client, org.hq_operator)
    assert seen["campaigns running"].value == 1
    assert seen["broadcasts waiting for approval"].value == 1
    assert seen["members on journeys now"].value == 1
    sent = seen["messages sent today"]
    assert sent.value == 2 and len(sent.trend) == 14 and sent.trend[-1] == 2
    assert sent.trend[-9] == 1  # eight days ago
    attributed = seen["orders attributed this week"]
    assert Conversion.objects.count() == 2
    if weeks_back == 0:
        assert attributed.value == 2 and attributed.trend[-1] == 2.0
    else:
        assert attributed.value == 1 and attributed.trend[-1] == 1.0
        assert attributed.trend[-1 - weeks_back] == 1.0 and sum(attributed.trend) == 2.0
    if weeks_back == 1:
        assert attributed.change == 0.0
    assert seen["revenue attributed this week (¥)"].trend[-1] in (300.0, 400.0)

    # Three broadcasts planned three days ago (make_broadcast), none activated campaigns.
    launched = seen["campaigns and broadcasts launched this week"]
    assert launched.value == 3 and launched.trend[-2:] == [0.0, 3.0]

    response = client.get("/hq/")
    page = response.content.decode()
    drawn = [f for item in response.context["board"] for f in item["figures"] if f.trend]
    assert page.count('class="sparkline"') == len(drawn) >= 9
    # Every step but 3 and 4 draws a trend from its first day; those two need a second
    # day of snapshots.
    steps = {
        item["step"].number
        for item in response.context["board"]
        for f in item["figures"]
        if f.trend
    }
    assert steps == {1, 2, 5, 6, 7, 8, 9}
    assert 'href="/hq/campaigns/?status=active"' in page

    # A store manager sees their stores' part: the a1 member's send and order only.
    mine = figures(client, org.store_manager_a1)
    assert mine["messages sent today"].value == 1
    assert mine["orders attributed this week"].trend[-1] == 1.0
    assert mine["campaigns running"].value == 0  # head office's campaign
    assert mine["broadcasts waiting for approval"].value == 1  # their own store's
    assert mine["campaigns and broadcasts launched this week"].value == 1
