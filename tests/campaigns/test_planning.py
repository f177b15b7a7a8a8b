"""Planning broadcasts: the audience after suppression (opt-outs, no identity for the
channel, frequency caps shared by every campaign), one delivery per member, and content
variables checked up front."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import (
    Broadcast,
    Delivery,
    FrequencyRule,
    MarketingOptOut,
    Material,
)
from campaigns.services.content import content_check, render
from campaigns.services.planning import broadcast_plan, broadcast_preview
from members.models import Segment
from members.services.errors import MemberError
from tests.conftest import Org
from tests.members.factories import phone_identity

pytestmark = pytest.mark.django_db

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


@pytest.fixture
def audience(org: Org) -> Segment:
    return Segment.objects.create(name="全部", rules=EVERYONE)


def make_broadcast(org: Org, segment: Segment, channel: str = "sms", **kw: Any) -> Broadcast:
    material = Material.objects.create(
        kind="text", title="会员日", body=kw.pop("body", "{name}，会员日双倍积分！")
    )
    return Broadcast.objects.create(
        name=kw.pop("name", "会员日"),
        channel=channel,
        material=material,
        segment=segment,
        created_by=org.hq_operator,
        status=kw.pop("status", "approved"),
        **kw,
    )


def test_content_variables_are_checked_and_filled() -> None:
    assert content_check("{name}，您有 {points} 积分") == ["name", "points"]
    assert render("{name}，您有 {points} 积分", {"name": "王小美", "points": 340}) == (
        "王小美，您有 340 积分"
    )
    assert render("您有 {points} 积分", {"points": 0}) == "您有 0 积分"
    assert render("{name}你好", {}) == "你好"
    bad = (
        ("{nmae}你好", "unknown_variable"),
        ("{name", "content_braces"),
        ("{}你好", "content_braces"),
        ("{points:d} 积分", "content_braces"),
        ("{name!r}", "content_braces"),
    )
    for text, code in bad:
        with pytest.raises(MemberError) as exc:
            content_check(text)
        assert exc.value.code == code


def test_preview_and_plan_count_each_suppression(org: Org, audience: Segment) -> None:
    members = [
        org.member_of_guide_a1,
        org.member_of_guide_a1_other,
        org.member_a1_unassigned,
        org.member_a2,
        org.member_b1,
    ]
    for member in members[:4]:
        phone_identity(member, f"+86139000000{member.pk % 100:02d}")
    MarketingOptOut.objects.create(member=members[0], channel="")  # all channels
    MarketingOptOut.objects.create(member=members[1], channel="wecom")  # another channel
    earlier = make_broadcast(org, audience, name="昨晚", channel="inbox")
    Delivery.objects.create(
        broadcast=earlier,
        member=members[2],
        channel="inbox",
        send_day=timezone.localdate(),
        status="sent",
    )  # today's one message across all channels is used up
    broadcast = make_broadcast(org, audience)
    preview = broadcast_preview(broadcast=broadcast)
    assert (preview.audience, preview.to_send) == (5, 2)
    assert preview.suppressed == {"frequency_cap": 1, "no_identity": 1, "opted_out": 1}
    planned = broadcast_plan(broadcast=broadcast)
    assert (planned.to_send, planned.suppressed) == (2, preview.suppressed)
    rows = dict(Delivery.objects.filter(broadcast=broadcast).values_list("member_id", "reason"))
    assert rows == {
        members[0].pk: "opted_out",
        members[1].pk: "",
        members[2].pk: "frequency_cap",
        members[3].pk: "",
        members[4].pk: "no_identity",
    }
    # Planning again adds nothing.
    again = broadcast_plan(broadcast=broadcast)
    assert Delivery.objects.filter(broadcast=broadcast).count() == 5
    assert again.to_send == 2


def test_overlapping_campaigns_never_pass_a_cap(org: Org, audience: Segment) -> None:
    FrequencyRule.objects.filter(channel="").update(per_day=2, per_month=3)
    first, second, third = (
        make_broadcast(org, audience, channel="inbox", name=name) for name in "一二三"
    )
    tomorrow_at = timezone.now() + timedelta(days=1)
    fourth = make_broadcast(org, audience, channel="inbox", name="四", scheduled_at=tomorrow_at)
    fifth = make_broadcast(org, audience, channel="inbox", name="五", scheduled_at=tomorrow_at)
    assert broadcast_plan(broadcast=first).to_send == 5
    assert broadcast_plan(broadcast=second).to_send == 5
    assert broadcast_plan(broadcast=third).suppressed == {"frequency_cap": 5}  # 2 a day
    # Tomorrow has its own day, but the month holds three: the fourth goes, the fifth
    # does not (unless tomorrow is already next month).
    assert broadcast_plan(broadcast=fourth).to_send == 5
    same_month = (timezone.localdate() + timedelta(days=1)).month == timezone.localdate().month
    assert broadcast_plan(broadcast=fifth).to_send == (0 if same_month else 5)


def test_bad_broadcasts_plan_nothing(org: Org, audience: Segment) -> None:
    nobody = Segment.objects.create(
        name="没有人",
        rules={"op": "and", "rules": [{"field": "city", "operator": "in", "value": ["火星"]}]},
    )
    empty = make_broadcast(org, nobody, channel="inbox")
    with pytest.raises(MemberError) as exc:
        broadcast_plan(broadcast=empty)
    assert exc.value.code == "audience_empty"
    draft = make_broadcast(org, audience, status="draft")
    with pytest.raises(MemberError) as exc:
        broadcast_plan(broadcast=draft)
    assert exc.value.code == "not_approved"
    typo = make_broadcast(org, audience, body="{nmae}您好")
    with pytest.raises(MemberError) as exc:
        broadcast_plan(broadcast=typo)
    assert exc.value.code == "unknown_variable"
    assert not Delivery.objects.exists()
    assert Broadcast.objects.filter(status="sending").count() == 0
