"""The board's steps 1, 3, 4 and 5 read the aggregates: pool size and tag coverage from
the latest snapshot, new contacts per week with their trend, active customers, points
outstanding; touchpoints healthy and alerting — each scoped to what the user sees."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.services import aggregates_rebuild, snapshots_take
from members.models import MemberTag
from tests.analytics.conftest import later, member
from tests.conftest import Org
from tests.members.factories import TagFactory
from touchpoints.models import Channel, Touchpoint, TouchpointAlert

pytestmark = pytest.mark.django_db


def board(client: Client, user: Any) -> dict[str, Any]:
    client.cookies["scrm_language"] = "en"
    client.force_login(user)
    response = client.get("/hq/")
    return {str(f.label): f for item in response.context["board"] for f in item["figures"]}


def test_pool_tags_and_touchpoints_on_the_board(org: Org, client: Client) -> None:
    now = timezone.now()
    # Two more a1 contacts, three and ten days ago: this week and the week before.
    member(created=now - timedelta(days=3), home_store=org.a1)
    member(created=now - timedelta(days=10), home_store=org.a1, lifecycle_stage="repeat")
    # Yesterday's snapshot, before anyone was tagged: the coverage trend starts at 0.
    snapshots_take(day=timezone.localdate() - timedelta(days=1))
    MemberTag.objects.create(
        member=org.member_of_guide_a1, tag=TagFactory(), source="manual", added_at=now
    )
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    quiet = Touchpoint.objects.create(
        channel=channel, kind="qr_code", name="a", code="a", store=org.a1
    )
    Touchpoint.objects.create(channel=channel, kind="qr_code", name="b", code="b", store=org.a1)
    Touchpoint.objects.create(channel=channel, kind="qr_code", name="c", code="c", store=org.b1)
    TouchpointAlert.objects.create(
        touchpoint=quiet, kind="inflow_drop", day=timezone.localdate(), value=0, baseline=10
    )
    aggregates_rebuild(now=later())

    seen = board(client, org.hq_operator)
    assert seen["members and prospects"].value == 7
    new = seen["new this week"]
    assert new.value == 6 and len(new.trend) == 8 and new.trend[-2:] == [1.0, 6.0]
    assert new.change == 5.0
    assert seen["members with a tag (%)"].value == round(100 / 7)
    assert seen["members with a tag (%)"].trend == [0.0, float(round(100 / 7))]
    assert seen["active customers (new, repeat, loyal)"].value == 1
    assert (seen["touchpoints healthy"].value, seen["touchpoints alerting"].value) == (2, 1)

    mine = board(client, org.store_manager_a1)  # store a1: five members, two touchpoints
    assert mine["members and prospects"].value == 5
    assert mine["new this week"].value == 4 and mine["new this week"].trend[-2] == 1.0
    assert mine["members with a tag (%)"].value == 20
    assert (mine["touchpoints healthy"].value, mine["touchpoints alerting"].value) == (1, 1)
    page = client.get("/hq/").content.decode()
    assert 'href="/hq/monitor/pool/"' in page and 'class="sparkline"' in page
