"""The campaign funnel: facts rebuilt per broadcast from its deliveries, conversions and
orders — audience, not sent by reason, control group, sent, opened, clicked, converted,
revenue, and the uplift over the control group — and the pages that read them."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from campaigns.models import (
    Broadcast,
    Campaign,
    Conversion,
    Delivery,
    FunnelFact,
    JourneyStep,
    Material,
)
from campaigns.selectors.funnel import (
    conversions_by_touchpoint,
    funnel_breakdown,
    funnel_facts,
    funnel_sum,
    funnel_totals,
)
from campaigns.services.attribution import attribution_refresh
from campaigns.services.funnel import funnel_rebuild, funnel_refresh
from members.models import Member, Order, Segment
from tests.conftest import Org
from tests.members.factories import OrderFactory

pytestmark = pytest.mark.django_db

EVERYONE = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f", "m"]}]}


def make_broadcast(org: Org, name: str, **fields: Any) -> Broadcast:
    fields.setdefault("channel", "sms")
    return Broadcast.objects.create(
        name=name,
        material=Material.objects.create(kind="text", title=name, body="hi"),
        segment=Segment.objects.create(name=name, rules=EVERYONE),
        created_by=org.hq_operator,
        status="done",
        planned_at=timezone.now() - timedelta(days=3),
        **fields,
    )


def deliver(
    b: Broadcast, member: Member, at: datetime, status: str = "sent", **fields: Any
) -> Delivery:
    return Delivery.objects.create(
        broadcast=b,
        member=member,
        channel=b.channel,
        send_day=timezone.localdate(at),
        status=status,
        sent_at=at if status in ("sent", "held_out") else None,
        **fields,
    )


def buy(org: Org, member: Member, paid_at: datetime, amount: str) -> Order:
    return OrderFactory(member=member, paid_at=paid_at, amount=Decimal(amount), store=org.a1)


@pytest.fixture
def spring(org: Org) -> Broadcast:
    """春季上新 to five members: two sent (one opened and clicked, one opened), one opted
    out, one over the frequency cap, one in the control group. It cost ¥100."""
    now = timezone.now()
    at = now - timedelta(days=2)
    b = make_broadcast(org, "春季上新", holdout_percent=20, cost=Decimal("100.00"))
    deliver(b, org.member_of_guide_a1, at, opened_at=at, clicked_at=at)
    deliver(b, org.member_of_guide_a1_other, at, opened_at=at)
    deliver(b, org.member_a1_unassigned, at, status="suppressed", reason="opted_out")
    deliver(b, org.member_a2, at, status="suppressed", reason="frequency_cap")
    deliver(b, org.member_b1, at, status="held_out")
    buy(org, org.member_of_guide_a1, now - timedelta(days=1), "300.00")  # converted
    buy(org, org.member_of_guide_a1_other, now + timedelta(days=6), "99.00")  # 8 days on
    buy(org, org.member_b1, now - timedelta(days=1), "120.50")  # control group buyer
    attribution_refresh()
    return b


def totals(user: Any, **filters: Any) -> Any:
    return funnel_totals(funnel_facts(user=user, **filters))


def test_each_funnel_figure_is_counted_exactly(org: Org, spring: Broadcast) -> None:
    rows = funnel_rebuild(broadcast=spring)

    t = totals(org.hq_operator, broadcast=spring)
    assert t["audience"] == 5
    assert (t["opted_out"], t["frequency_cap"], t.suppressed) == (1, 1, 2)
    assert (t["held_out"], t["sent"], t["failed"], t["waiting"]) == (1, 2, 0, 0)
    assert (t["opened"], t["clicked"]) == (2, 1)
    assert (t["converted"], t["revenue"]) == (1, Decimal("300.00"))
    # The order 8 days after the message is outside the 7-day window.
    assert (t["sent_buyers"], t["sent_buyer_revenue"]) == (1, Decimal("300.00"))
    assert (t["control_buyers"], t["control_revenue"]) == (1, Decimal("120.50"))
    assert t.sent_buyer_rate == 0.5 and t.control_buyer_rate == 1.0
    assert t.uplift == -0.5
    # Spend per member sent 150 less per control member 120.50, times the 2 sent.
    assert t.incremental_revenue == Decimal("59.00")
    # One row per store × guide × day × hour: a1/guide_a1 and a1/guide_a1_other sent
    # (same hour), a1 unassigned, a2 and b1.
    assert rows == FunnelFact.objects.count() == 5
    fact = FunnelFact.objects.get(guide=org.guide_a1)
    assert (fact.store_id, fact.sent, fact.converted, fact.revenue) == (
        org.a1.pk,
        1,
        1,
        Decimal("300.00"),
    )
    assert fact.hour == timezone.localtime(timezone.now() - timedelta(days=2)).hour


def test_rebuilding_twice_changes_nothing_and_refunds_reach_the_figures(
    org: Org, spring: Broadcast
) -> None:
    funnel_rebuild(broadcast=spring)
    before = list(FunnelFact.objects.order_by("store_id", "guide_id").values())
    funnel_rebuild(broadcast=spring)
    after = list(FunnelFact.objects.order_by("store_id", "guide_id").values())
    assert [{**r, "id": 0} for r in before] == [{**r, "id": 0} for r in after]

    Order.objects.filter(member=org.member_of_guide_a1).update(
        refunded_amount=Decimal("100.00"), status="partially_refunded"
    )
    attribution_refresh(now=timezone.now() + timedelta(minutes=15))
    funnel_refresh()
    t = totals(org.hq_operator, broadcast=spring)
    assert (t["converted"], t["revenue"], t["sent_buyer_revenue"]) == (
        1,
        Decimal("200.00"),
        Decimal("200.00"),
    )


def test_a_member_converted_by_two_campaigns_credits_each_its_own_order(org: Org) -> None:
    now = timezone.now()
    member = org.member_of_guide_a1
    first = make_broadcast(org, "春季上新")
    second = make_broadcast(org, "会员日", channel="inbox")
    deliver(first, member, now - timedelta(days=6))
    buy(org, member, now - timedelta(days=5), "300.00")  # after the first message only
    deliver(second, member, now - timedelta(days=2))
    buy(org, member, now - timedelta(days=1), "80.00")  # the second is the last touch
    attribution_refresh()
    stats = funnel_refresh()

    assert stats.broadcasts == 2
    a, b = totals(org.hq_operator, broadcast=first), totals(org.hq_operator, broadcast=second)
    assert (a["converted"], a["revenue"]) == (1, Decimal("300.00"))
    assert (b["converted"], b["revenue"]) == (1, Decimal("80.00"))
    # No control group: the uplift figures are not computed.
    assert a["sent_buyers"] == 0 and a.uplift is None


def test_old_broadcasts_wait_for_the_nightly_refresh(org: Org) -> None:
    now = timezone.now()
    old = make_broadcast(org, "去年双十一")
    Broadcast.objects.filter(pk=old.pk).update(planned_at=now - timedelta(days=40))
    deliver(old, org.member_b1, now - timedelta(days=40))
    assert funnel_refresh().broadcasts == 0
    from campaigns.services.funnel import funnel_refresh_nightly

    assert funnel_refresh_nightly().broadcasts == 1
    assert totals(org.hq_operator, broadcast=old)["sent"] == 1


def journey(org: Org) -> tuple[Campaign, list[Broadcast]]:
    now = timezone.now()
    campaign = Campaign.objects.create(
        name="新会员欢迎",
        template="welcome",
        starts_at=now - timedelta(days=10),
        ends_at=now + timedelta(days=30),
        created_by=org.hq_operator,
        trigger="registered",
        cost=Decimal("50.00"),
    )
    material = Material.objects.create(kind="text", title="欢迎", body="欢迎")
    waves = []
    for position, days_ago in ((1, 3), (3, 1)):
        step = JourneyStep.objects.create(
            campaign=campaign, position=position, kind="send", channel="inbox", material=material
        )
        waves.append(
            Broadcast.objects.create(
                name=f"wave {position}",
                channel="inbox",
                material=material,
                journey_step=step,
                wave_day=timezone.localdate(now - timedelta(days=days_ago)),
                created_by=org.hq_operator,
                status="sending",
                planned_at=now - timedelta(days=days_ago),
            )
        )
    deliver(waves[0], org.member_b1, now - timedelta(days=3))
    deliver(waves[0], org.member_a2, now - timedelta(days=3))
    deliver(waves[1], org.member_b1, now - timedelta(days=1), opened_at=now)
    buy(org, org.member_b1, now - timedelta(hours=5), "88.00")
    attribution_refresh()
    funnel_refresh()
    return campaign, waves


def test_a_campaign_funnel_breaks_down_by_wave_and_step(org: Org, client: Any) -> None:
    campaign, waves = journey(org)
    t = totals(org.hq_operator, campaign=campaign)
    assert (t["sent"], t["opened"], t["converted"], t["revenue"]) == (3, 1, 1, Decimal("88.00"))
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/campaigns/{campaign.pk}/funnel/?by=step")
    assert page.status_code == 200
    table = page.content.decode().split('data-testid="funnel-table"', 1)[1]
    assert "<td>Step 1</td><td>2</td>" in table and "<td>Step 3</td><td>1</td>" in table
    response = client.get(f"/hq/campaigns/{campaign.pk}/funnel/?by=wave&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Wave", "Audience"]
    assert [r[0] for r in rows[1:]] == [
        f"Step 1, {waves[0].wave_day}",
        f"Step 3, {waves[1].wave_day}",
    ]
    assert [r[-1] for r in rows[1:]] == ["0", "88.00"]


def test_the_broadcast_funnel_page_for_head_office(
    org: Org, spring: Broadcast, client: Any, django_assert_max_num_queries: Any
) -> None:
    funnel_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    with django_assert_max_num_queries(12):
        page = client.get(f"/hq/broadcasts/{spring.pk}/funnel/").content.decode()
    assert 'data-testid="funnel-audience">5<' in page
    assert 'data-testid="funnel-sent">2<' in page
    assert 'data-testid="funnel-held-out">1<' in page
    assert 'data-testid="funnel-revenue">¥300.00<' in page
    assert 'data-testid="funnel-cost">¥100.00<' in page
    assert "ROI 200.0%" in page  # (300 − 100) / 100
    assert 'data-testid="funnel-uplift-points">-50.0 pt<' in page
    assert 'id="funnel-data"' in page and "vendor/chartjs/chart.umd.min.js" in page

    by_store = client.get(f"/hq/broadcasts/{spring.pk}/funnel/?by=store&format=xlsx")
    sheet = load_workbook(io.BytesIO(by_store.content)).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:3] == ["Store", "Audience", "Not sent"]
    by_name = {row[0]: row for row in values[1:]}
    assert by_name[org.a1.name][1:6] == [3, 1, 0, 0, 2]
    assert by_name[org.b1.name][1:6] == [1, 0, 1, 0, 0]


def test_a_store_manager_sees_their_stores_part_without_cost(org: Org, client: Any) -> None:
    now = timezone.now()
    own = make_broadcast(org, "南京西路店庆", store=org.a1, cost=Decimal("30.00"))
    deliver(own, org.member_of_guide_a1, now - timedelta(days=1))
    deliver(own, org.member_a1_unassigned, now - timedelta(days=1))
    # Moved to a Beijing store after the message: no longer the manager's to see.
    deliver(own, org.member_b1, now - timedelta(days=1))
    buy(org, org.member_b1, now - timedelta(hours=3), "500.00")
    attribution_refresh()
    funnel_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.store_manager_a1)
    page = client.get(f"/hq/broadcasts/{own.pk}/funnel/").content.decode()
    assert 'data-testid="funnel-audience">2<' in page
    assert (
        'data-testid="funnel-revenue">¥0<' in page or 'data-testid="funnel-revenue">¥0.00<' in page
    )
    assert "funnel-cost" not in page
    # Another store's filter is refused, not quietly emptied.
    assert client.get(f"/hq/broadcasts/{own.pk}/funnel/?store={org.b1.pk}").status_code == 404
    assert client.get(f"/hq/broadcasts/{own.pk}/funnel/?store=x").status_code == 404
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/broadcasts/{own.pk}/funnel/").content.decode()
    assert 'data-testid="funnel-audience">3<' in page
    assert 'data-testid="funnel-revenue">¥500.00<' in page and "ROI 1566.7%" in page


def test_another_stores_broadcast_funnel_is_not_found(org: Org, client: Any) -> None:
    theirs = make_broadcast(org, "北京店庆", store=org.b1)
    client.force_login(org.store_manager_a1)
    assert client.get(f"/hq/broadcasts/{theirs.pk}/funnel/").status_code == 404
    assert client.get("/hq/broadcasts/999999/funnel/").status_code == 404


def test_bad_dates_fall_back_with_a_message(org: Org, spring: Broadcast, client: Any) -> None:
    funnel_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/broadcasts/{spring.pk}/funnel/?from=2026-02-30").content.decode()
    assert "Dates are written YYYY-MM-DD" in page
    page = client.get("/hq/campaigns/compare/?from=2020-01-01&to=2026-01-01").content.decode()
    assert "Choose a range of at most a year" in page
    # A range before anything was sent: the empty state, not an error.
    page = client.get(
        f"/hq/broadcasts/{spring.pk}/funnel/?from=2020-01-01&to=2020-01-31"
    ).content.decode()
    assert 'data-testid="funnel-empty"' in page


def test_campaign_comparison_ranks_by_revenue(
    org: Org, spring: Broadcast, client: Any, django_assert_max_num_queries: Any
) -> None:
    campaign, _waves = journey(org)
    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    with django_assert_max_num_queries(12):
        page = client.get("/hq/campaigns/compare/").content.decode()
    assert page.count('data-testid="compare-row"') == 2
    assert page.index("春季上新") < page.index("新会员欢迎")
    response = client.get("/hq/campaigns/compare/?format=csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Campaign or broadcast" and rows[0][-3:] == ["Cost", "ROI", "Uplift"]
    assert [(r[0], r[5], r[10], r[11], r[12]) for r in rows[1:]] == [
        ("春季上新", "2", "300.00", "100.00", "2.0000"),
        ("新会员欢迎", "3", "88.00", "50.00", "0.7600"),
    ]
    inbox_only = client.get("/hq/campaigns/compare/?channel=inbox").content.decode()
    assert inbox_only.count('data-testid="compare-row"') == 1 and "新会员欢迎" in inbox_only
    unknown = client.get("/hq/campaigns/compare/?channel=fax").content.decode()
    assert "Unknown channel" in unknown and unknown.count('data-testid="compare-row"') == 2


def test_campaign_comparison_for_a_store_manager(org: Org, spring: Broadcast, client: Any) -> None:
    funnel_refresh()
    client.cookies["scrm_language"] = "en"
    client.force_login(org.store_manager_a1)
    page = client.get("/hq/campaigns/compare/").content.decode()
    # Head office's broadcast reached the manager's customers: its a1 part, unlinked
    # (its own page is head office's), without cost or ROI.
    assert page.count('data-testid="compare-row"') == 1
    row = page.split('data-testid="compare-row"', 1)[1].split("</tr>", 1)[0]
    assert "春季上新" in row and "/funnel/" not in row
    assert "<td>3</td><td>2</td>" in row and "¥300.00" in row
    assert "<th>Cost</th>" not in page
    assert client.get(f"/hq/campaigns/compare/?store={org.b1.pk}").status_code == 404
    client.force_login(org.hq_operator)
    empty = client.get("/hq/campaigns/compare/?from=2020-01-01&to=2020-01-31").content.decode()
    assert 'data-testid="compare-empty"' in empty


def test_conversions_are_credited_to_the_touchpoint_the_customer_came_from(
    org: Org, client: Any
) -> None:
    from touchpoints.models import BehaviourEvent, Channel, Touchpoint

    now = timezone.now()
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    first, later_tp = (
        Touchpoint.objects.create(channel=channel, kind="qr_code", name=n, code=n, store=org.a1)
        for n in ("门店活码", "海报活码")
    )
    member = org.member_of_guide_a1
    for touchpoint, days in ((later_tp, 20), (first, 40), (None, 50)):
        BehaviourEvent.objects.create(
            member=member,
            type="scan",
            client_event_id=f"scan-{days}",
            occurred_at=now - timedelta(days=days),
            touchpoint=touchpoint,
        )
    b = make_broadcast(org, "会员日")
    deliver(b, member, now - timedelta(days=1))
    deliver(b, org.member_b1, now - timedelta(days=1))
    buy(org, member, now - timedelta(hours=2), "300.00")
    OrderFactory(  # bought in their own store
        member=org.member_b1, paid_at=now - timedelta(hours=2), amount=Decimal("50"), store=org.b1
    )
    attribution_refresh()
    funnel_refresh()
    credited = dict(Conversion.objects.values_list("member_id", "touchpoint_id"))
    assert credited == {member.pk: first.pk, org.member_b1.pk: None}

    client.cookies["scrm_language"] = "en"
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/broadcasts/{b.pk}/funnel/").content.decode()
    table = page.split('data-testid="funnel-touchpoints"', 1)[1].split("</table>", 1)[0]
    assert table.index("门店活码") < table.index("Unknown")
    assert "<td>门店活码</td><td>企业微信</td><td>1</td><td>¥300.00</td>" in table
    # The table reads the conversion facts, scoped by the order's store as the
    # conversions are; rebuilding them again changes nothing.
    funnel_refresh()
    mine = conversions_by_touchpoint(user=org.store_manager_a1, broadcast=b)
    assert [(row["touchpoint__name"], row["orders"]) for row in mine] == [("门店活码", 1)]
    everyone = conversions_by_touchpoint(user=org.hq_operator, broadcast=b)
    assert sorted(row["orders"] for row in everyone) == [1, 1]
    assert (
        conversions_by_touchpoint(
            user=org.hq_operator, broadcast=b, end=now.date().replace(year=2020)
        )
        == []
    )


def test_a_breakdowns_rows_add_up_to_the_totals(org: Org, spring: Broadcast) -> None:
    funnel_refresh()
    facts = funnel_facts(user=org.hq_operator, broadcast=spring)
    whole = funnel_totals(facts).figures
    for by in ("day", "hour", "store", "guide", "wave", "step"):
        assert funnel_sum(funnel_breakdown(facts, by)).figures == whole, by
