"""Attribution: an order converts the last message sent to its member within the window
(7 days by default) — credited to the broadcast, channel, store and guide — exactly once;
orders outside the window, before the message, or fully refunded convert nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import AttributionSetting, Broadcast, Conversion, Delivery, Material
from campaigns.services.attribution import attribution_refresh
from members.models import Member, Order, Segment
from tests.conftest import Org
from tests.members.factories import OrderFactory

pytestmark = pytest.mark.django_db

EVERYONE = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f", "m"]}]}


def broadcast(org: Org, name: str, channel: str = "sms") -> Broadcast:
    return Broadcast.objects.create(
        name=name,
        channel=channel,
        material=Material.objects.create(kind="text", title=name, body="hi"),
        segment=Segment.objects.create(name=name, rules=EVERYONE),
        created_by=org.hq_operator,
        status="done",
    )


def sent(b: Broadcast, member: Member, at: datetime, status: str = "sent") -> Delivery:
    return Delivery.objects.create(
        broadcast=b,
        member=member,
        channel=b.channel,
        send_day=timezone.localdate(at),
        status=status,
        sent_at=at if status == "sent" else None,
    )


def order(org: Org, member: Member, paid_at: datetime, amount: str = "300.00") -> Order:
    return OrderFactory(
        member=member, paid_at=paid_at, amount=Decimal(amount), store=org.a1, guide=org.guide_a1
    )


def test_an_order_converts_the_last_message_within_the_window(org: Org) -> None:
    now = timezone.now()
    member, other = org.member_of_guide_a1, org.member_b1
    spring, member_day = broadcast(org, "春季上新"), broadcast(org, "会员日", "inbox")
    sent(spring, member, now - timedelta(days=5))
    last = sent(member_day, member, now - timedelta(days=1))
    converted = order(org, member, now - timedelta(hours=2))
    sent(spring, other, now - timedelta(days=9))
    order(org, other, now - timedelta(hours=1))  # 9 days after its message: outside
    early = order(org, org.member_a2, now - timedelta(days=3))
    sent(spring, org.member_a2, now - timedelta(days=2))  # the message came after the order
    suppressed_member = org.member_a1_unassigned
    sent(spring, suppressed_member, now - timedelta(days=1), status="suppressed")
    order(org, suppressed_member, now - timedelta(hours=1))

    stats = attribution_refresh()

    assert stats.converted == 1
    conversion = Conversion.objects.get()
    assert conversion.order_id == converted.pk and conversion.delivery_id == last.pk
    assert (conversion.broadcast_id, conversion.channel) == (member_day.pk, "inbox")
    assert (conversion.store_id, conversion.guide_id) == (org.a1.pk, org.guide_a1.pk)
    assert conversion.revenue == Decimal("300.00") and conversion.campaign_id is None
    assert not Conversion.objects.filter(order=early).exists()
    # A second run (or one at the same time) credits nothing twice.
    assert attribution_refresh(now=timezone.now() + timedelta(minutes=15)).converted == 0
    assert Conversion.objects.count() == 1


def test_refunds_lower_or_withdraw_the_revenue(org: Org) -> None:
    now = timezone.now()
    b = broadcast(org, "会员日")
    partly, fully = org.member_of_guide_a1, org.member_b1
    sent(b, partly, now - timedelta(days=1))
    sent(b, fully, now - timedelta(days=1))
    partial = order(org, partly, now - timedelta(hours=3))
    full = order(org, fully, now - timedelta(hours=3))
    assert attribution_refresh().converted == 2

    Order.objects.filter(pk=partial.pk).update(
        refunded_amount=Decimal("100.00"), status="partially_refunded"
    )
    Order.objects.filter(pk=full.pk).update(refunded_amount=Decimal("300.00"), status="refunded")
    stats = attribution_refresh(now=timezone.now() + timedelta(minutes=15))
    assert (stats.revised, stats.withdrawn) == (2, 1)
    assert list(Conversion.objects.values_list("order_id", "revenue")) == [
        (partial.pk, Decimal("200.00"))
    ]


def test_the_window_is_head_offices_to_set_and_imports_are_attributed(org: Org) -> None:
    now = timezone.now()
    setting = AttributionSetting.current()
    setting.window_days = 3
    setting.save()
    b = broadcast(org, "双十一")
    member = org.member_of_guide_a1
    sent(b, member, now - timedelta(days=40))
    # Last month's order, imported today: paid 4 days after the message, outside 3 days.
    order(org, member, now - timedelta(days=36))
    imported = order(org, member, now - timedelta(days=38))  # 2 days after: inside
    assert attribution_refresh().converted == 1
    assert Conversion.objects.get().order_id == imported.pk


def test_a_journey_wave_credits_its_campaign(org: Org) -> None:
    from campaigns.models import Campaign, JourneyStep

    now = timezone.now()
    campaign = Campaign.objects.create(
        name="新会员欢迎",
        template="welcome",
        starts_at=now - timedelta(days=10),
        ends_at=now + timedelta(days=30),
        created_by=org.hq_operator,
        trigger="registered",
    )
    step = JourneyStep.objects.create(
        campaign=campaign,
        position=1,
        kind="send",
        channel="inbox",
        material=Material.objects.create(kind="text", title="欢迎", body="欢迎"),
    )
    wave = Broadcast.objects.create(
        name="wave",
        channel="inbox",
        material=step.material,
        journey_step=step,
        wave_day=timezone.localdate(now),
        created_by=org.hq_operator,
        status="sending",
    )
    sent(wave, org.member_b1, now - timedelta(days=1))
    order(org, org.member_b1, now - timedelta(hours=1))
    attribution_refresh()
    assert Conversion.objects.get().campaign_id == campaign.pk


def test_the_broadcast_page_shows_what_it_sold(org: Org, client: Any) -> None:
    now = timezone.now()
    b = broadcast(org, "会员日")
    for member in (org.member_of_guide_a1, org.member_b1):
        sent(b, member, now - timedelta(days=1))
    order(org, org.member_of_guide_a1, now - timedelta(hours=2), amount="300.00")
    order(org, org.member_b1, now - timedelta(hours=1), amount="120.50")
    attribution_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/broadcasts/{b.pk}/").content.decode()
    converted = page.split('data-testid="converted">', 1)[1].split("</p>", 1)[0]
    assert "<b>2</b>" in converted and "¥<b>420.50</b>" in converted
    assert "within 7 days" in converted


def test_the_campaign_page_shows_what_its_journey_sold(org: Org, client: Any) -> None:
    from campaigns.models import Campaign, JourneyStep

    now = timezone.now()
    campaign = Campaign.objects.create(
        name="新会员欢迎",
        template="welcome",
        starts_at=now - timedelta(days=10),
        ends_at=now + timedelta(days=30),
        created_by=org.hq_operator,
        trigger="registered",
    )
    step = JourneyStep.objects.create(
        campaign=campaign,
        position=1,
        kind="send",
        channel="inbox",
        material=Material.objects.create(kind="text", title="欢迎", body="欢迎"),
    )
    wave = Broadcast.objects.create(
        name="wave",
        channel="inbox",
        material=step.material,
        journey_step=step,
        wave_day=timezone.localdate(now),
        created_by=org.hq_operator,
        status="sending",
    )
    sent(wave, org.member_b1, now - timedelta(days=2))
    order(org, org.member_b1, now - timedelta(hours=1), amount="88.00")
    attribution_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    converted = page.split('data-testid="converted">', 1)[1].split("</p>", 1)[0]
    assert "<b>1</b>" in converted and "¥<b>88.00</b>" in converted
