"""The aggregates: exact figures from planted rows, incremental runs, refunds, snapshots
and a rebuild that agrees with the increments."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import (
    CohortMonth,
    Cursor,
    LifecycleFlowDay,
    PointsDay,
    PoolDay,
    RfmMoveDay,
    SalesDay,
    SnapshotDay,
)
from analytics.services import aggregates_rebuild, aggregates_refresh, snapshots_take
from members.models import MemberRfm, MemberTier, Order, Tier
from members.services.points import points_earn, points_redeem
from tests.analytics.conftest import at, change, later, member, order, rows
from tests.conftest import Org

pytestmark = pytest.mark.django_db

D = timezone.localdate() - timedelta(days=20)
COHORT = D.replace(day=1)


def plant(org: Org) -> dict[str, object]:
    m1 = member(created=at(D, 9), home_store=org.a1, source_channel="wecom")
    m2 = member(created=at(D, 10), home_store=org.a1, source_channel="wecom")
    m3 = member(created=at(D, 11), home_store=org.b1, source_channel="tmall")
    m4 = member(created=at(D, 23), home_store=None, source_channel="")
    change(m1, frm="prospect", to="member", when=at(D, 12))
    change(m2, frm="prospect", to="private", when=at(D, 12))
    change(m3, frm="prospect", to="member", when=at(D, 13))
    points_earn(
        member_id=m1.pk, kind="activity", amount=100, source="t", external_id="e1", now=at(D)
    )
    points_redeem(member_id=m1.pk, amount=30, source="t", external_id="r1", now=at(D, 14))
    points_earn(member_id=m3.pk, kind="growth", amount=500, source="t", external_id="g1", now=at(D))
    # m1 buys twice on day D (one buyer that month), m3 once with a partial refund.
    order(m1, paid=at(D, 13), amount="100.00", channel="pos")
    order(m1, paid=at(D, 15), amount="50.00", channel="tmall")
    order(m3, paid=at(D, 16), amount="80.00", channel="pos", refunded_amount=Decimal("20.00"))
    return {"m1": m1, "m2": m2, "m3": m3, "m4": m4}


def test_refresh_counts_every_aggregate_exactly(org: Org) -> None:
    plant(org)
    assert aggregates_refresh(now=later()) == ["members", "lifecycle", "ledger", "orders"]
    assert rows(
        PoolDay.objects.filter(day=D), "store_id", "channel", "new_contacts", "new_members"
    ) == sorted([(org.a1.pk, "wecom", 2, 1), (org.b1.pk, "tmall", 1, 1), (None, "", 1, 0)], key=str)
    assert rows(
        LifecycleFlowDay.objects.all(), "day", "store_id", "from_stage", "to_stage", "members"
    ) == sorted(
        [
            (D, org.a1.pk, "prospect", "member", 1),
            (D, org.a1.pk, "prospect", "private", 1),
            (D, org.b1.pk, "prospect", "member", 1),
        ],
        key=str,
    )
    # Growth value is not a liability: only the activity account counts.
    assert rows(
        PointsDay.objects.all(), "day", "store_id", "issued", "redeemed", "expired", "adjusted"
    ) == [(D, org.a1.pk, 100, 30, 0, 0)]
    assert rows(
        SalesDay.objects.all(),
        "day",
        "store_id",
        "channel",
        "orders",
        "revenue",
        "refunded",
        "first_orders",
    ) == sorted(
        [
            (D, org.a1.pk, "pos", 1, Decimal("100.00"), Decimal("0.00"), 1),
            (D, org.a1.pk, "tmall", 1, Decimal("50.00"), Decimal("0.00"), 0),
            (D, org.b1.pk, "pos", 1, Decimal("80.00"), Decimal("20.00"), 1),
        ],
        key=str,
    )
    assert rows(
        CohortMonth.objects.all(),
        "cohort",
        "channel",
        "store_id",
        "months_after",
        "buyers",
        "revenue",
        "refunded",
    ) == sorted(
        [
            (COHORT, "wecom", org.a1.pk, 0, 1, Decimal("150.00"), Decimal("0.00")),
            (COHORT, "tmall", org.b1.pk, 0, 1, Decimal("80.00"), Decimal("20.00")),
        ],
        key=str,
    )


def _state() -> list[list[tuple[object, ...]]]:
    return [
        rows(PoolDay.objects.all(), "day", "store_id", "channel", "new_contacts", "new_members"),
        rows(
            LifecycleFlowDay.objects.all(), "day", "store_id", "from_stage", "to_stage", "members"
        ),
        rows(PointsDay.objects.all(), "day", "store_id", "issued", "redeemed", "outstanding"),
        rows(SalesDay.objects.all(), "day", "store_id", "channel", "orders", "revenue", "refunded"),
        rows(CohortMonth.objects.all(), "cohort", "store_id", "months_after", "buyers", "revenue"),
    ]


def test_second_refresh_adds_only_new_rows_and_a_rerun_changes_nothing(org: Org) -> None:
    people = plant(org)
    first = later(10)
    aggregates_refresh(now=first)
    before = _state()
    assert aggregates_refresh(now=first) == []
    assert _state() == before
    # Another order of m1 in the same month and a new contact, recorded after the first run.
    # (Recorded after the first run's read-until, which is ahead of the clock here.)
    recorded_at = later(12)
    new = order(people["m1"], paid=at(D, 18), amount="25.00", channel="pos")  # type: ignore[arg-type]
    Order.objects.filter(pk=new.pk).update(created_at=recorded_at)
    member(created=recorded_at, home_store=org.a1, source_channel="wecom")
    aggregates_refresh(now=later(20))
    assert PoolDay.objects.get(day=D, store=org.a1, channel="wecom").new_contacts == 2
    today = timezone.localdate(recorded_at)
    assert PoolDay.objects.get(day=today, store=org.a1, channel="wecom").new_contacts == 1
    sale = SalesDay.objects.get(day=D, store=org.a1, channel="pos")
    assert (sale.orders, sale.revenue, sale.first_orders) == (2, Decimal("125.00"), 1)
    cell = CohortMonth.objects.get(cohort=COHORT, store=org.a1, months_after=0)
    assert (cell.buyers, cell.revenue) == (1, Decimal("175.00"))  # still one buyer
    after = _state()
    aggregates_refresh(now=later(20))
    assert _state() == after


def test_rows_inside_the_late_margin_wait_for_the_next_run(org: Org) -> None:
    plant(org)
    aggregates_refresh(now=timezone.now())  # reads up to five minutes ago: not our orders
    assert SalesDay.objects.count() == 0
    assert Cursor.objects.get(name="orders").read_until < timezone.now()
    aggregates_refresh(now=later())
    assert SalesDay.objects.filter(day=D).count() == 3


def test_a_late_refund_lowers_revenue(org: Org) -> None:
    people = plant(org)
    aggregates_refresh(now=later(10))
    sold = Order.objects.get(member=people["m1"], channel="pos")
    Order.objects.filter(pk=sold.pk).update(
        refunded_amount=Decimal("40.00"), status="partially_refunded"
    )
    aggregates_refresh(now=later(20))
    sale = SalesDay.objects.get(day=D, store=org.a1, channel="pos")
    assert (sale.revenue, sale.refunded) == (Decimal("100.00"), Decimal("40.00"))
    cell = CohortMonth.objects.get(cohort=COHORT, store=org.a1, months_after=0)
    assert (cell.revenue, cell.refunded) == (Decimal("150.00"), Decimal("40.00"))
    # The other store's refund is recounted to the same figure, not doubled.
    assert SalesDay.objects.get(day=D, store=org.b1).refunded == Decimal("20.00")


def test_rebuild_agrees_with_the_increments(org: Org) -> None:
    people = plant(org)
    aggregates_refresh(now=later(10))
    new = order(people["m3"], paid=at(D, 19), amount="10.00", channel="jd")  # type: ignore[arg-type]
    Order.objects.filter(pk=new.pk).update(created_at=later(12))
    aggregates_refresh(now=later(20))
    snapshots_take()
    incremental = _state()
    aggregates_rebuild(now=later(20))
    assert _state() == incremental


def test_snapshots_record_distributions_and_retaking_replaces(org: Org) -> None:
    people = plant(org)
    gold = Tier.objects.create(name="金卡", rank=2, threshold=1000)
    silver = Tier.objects.create(name="银卡", rank=1, threshold=100)
    MemberTier.objects.create(member=people["m1"], tier=gold)  # type: ignore[misc]
    MemberTier.objects.create(
        member=people["m2"],  # type: ignore[misc]
        tier=silver,
        manual_tier=gold,
        manual_until=timezone.now() + timedelta(days=5),
    )
    today = timezone.localdate()
    MemberRfm.objects.create(
        member=people["m1"],  # type: ignore[misc]
        frequency=2,
        monetary=Decimal("150"),
        last_order_at=at(D),
        first_in_window=at(D),
        rfm_class="HHH",
        previous_class="LHH",
        class_since=today,
    )
    snapshots_take()
    a1 = SnapshotDay.objects.filter(day=today, store=org.a1)
    # a1 holds the org's three members and m1, m2 (all 'member' stage from the factory).
    assert rows(a1.filter(dimension="stage"), "value", "members") == [("member", 5)]
    assert rows(a1.filter(dimension="tier"), "value", "members") == [
        ("", 3),
        (str(gold.pk), 2),
    ]
    assert rows(a1.filter(dimension="rfm"), "value", "members") == [("HHH", 1)]
    assert rows(
        RfmMoveDay.objects.all(), "day", "store_id", "from_class", "to_class", "members"
    ) == [(today, org.a1.pk, "LHH", "HHH", 1)]
    assert PointsDay.objects.get(day=today, store=org.a1).outstanding == 70
    people["m2"].lifecycle_stage = "new"  # type: ignore[attr-defined]
    people["m2"].save(update_fields=["lifecycle_stage"])  # type: ignore[attr-defined]
    snapshots_take()
    assert rows(a1.filter(dimension="stage"), "value", "members") == [("member", 4), ("new", 1)]
    assert RfmMoveDay.objects.count() == 1
    assert SnapshotDay.objects.filter(day=today, dimension="stage").count() == 5
