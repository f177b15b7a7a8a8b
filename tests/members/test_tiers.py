"""Tiers: upgrade at once, keep by retention, grace then one level down, hand-set tiers
with a reason and an end date, and the tier multiplier on activity points."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from members.models import MemberTier, Tier, TierChange
from members.services.earning import earn_rules_ensure_defaults, points_award
from members.services.points import points_earn
from members.services.tiers import (
    TierError,
    tier_card,
    tier_evaluate,
    tier_set_manual,
    tiers_review,
)
from scrm.core.models import AuditEvent
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tiers(django_db_blocker: Any) -> dict[str, Tier]:
    with django_db_blocker.unblock():
        earn_rules_ensure_defaults()
    return {
        t.name: t
        for t in [
            Tier.objects.create(name="银卡", rank=1, threshold=1000, retain_threshold=500),
            Tier.objects.create(
                name="金卡",
                rank=2,
                threshold=5000,
                retain_threshold=3000,
                points_multiplier=Decimal("1.5"),
            ),
            Tier.objects.create(name="钻石卡", rank=3, threshold=20000, retain_threshold=10000),
        ]
    }


def growth(member_id: int, amount: int, key: str, when: Any = None) -> None:
    points_earn(
        member_id=member_id, kind="growth", amount=amount, source="order", external_id=key, now=when
    )


def kinds(member_id: int) -> list[str]:
    return list(
        TierChange.objects.filter(member_id=member_id)
        .order_by("changed_at", "id")
        .values_list("kind", flat=True)
    )


def test_a_purchase_that_crosses_a_threshold_upgrades_at_once(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    points_award(member_id=member.pk, event="purchase", reference="o1", amount_paid=Decimal("999"))
    assert tier_card(member_id=member.pk).tier is None
    points_award(member_id=member.pk, event="purchase", reference="o2", amount_paid=Decimal("4100"))
    card = tier_card(member_id=member.pk)
    # 5,099 reaches 金卡 directly (skipping 银卡), valid for a year.
    assert card.tier == tiers["金卡"]
    assert card.next_tier == tiers["钻石卡"] and card.to_next == 20000 - 5099
    assert card.valid_until is not None and card.valid_until > timezone.now() + timedelta(days=364)
    assert kinds(member.pk) == ["upgrade"]


def test_growth_outside_the_window_does_not_count(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    growth(member.pk, 900, "old", when=timezone.now() - timedelta(days=400))
    growth(member.pk, 200, "new")
    assert tier_evaluate(member_id=member.pk) is None


def test_retention_keeps_the_tier_and_renews_it(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    start = timezone.now() - timedelta(days=366)
    growth(member.pk, 1200, "g1", when=start)
    tier_evaluate(member_id=member.pk, now=start)
    growth(member.pk, 600, "g2", when=start + timedelta(days=100))
    counts = tiers_review()
    assert counts.kept == 1
    state = MemberTier.objects.get(member=member)
    assert state.tier == tiers["银卡"]
    assert state.valid_until is not None and state.valid_until > timezone.now()
    assert kinds(member.pk) == ["upgrade", "retain"]


def test_without_retention_a_grace_period_then_one_level_down(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    start = timezone.now() - timedelta(days=400)
    growth(member.pk, 25000, "g1", when=start)
    tier_evaluate(member_id=member.pk, now=start)
    assert MemberTier.objects.get(member=member).tier == tiers["钻石卡"]
    # Validity ended 35 days ago: grace starts (30 days after the end) ...
    first = tiers_review()
    assert (first.grace, first.downgraded) == (1, 0)
    # ... and once the grace date has passed the next review drops one level only.
    second = tiers_review()
    assert second.downgraded == 1
    assert MemberTier.objects.get(member=member).tier == tiers["金卡"]
    assert kinds(member.pk) == ["upgrade", "grace", "downgrade"]
    assert tiers_review().downgraded == 0  # the new tier's validity starts today


def test_earning_the_retention_during_grace_keeps_the_tier(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    start = timezone.now() - timedelta(days=370)
    growth(member.pk, 1000, "g1", when=start)
    tier_evaluate(member_id=member.pk, now=start)
    assert tiers_review().grace == 1
    points_award(member_id=member.pk, event="purchase", reference="o9", amount_paid=Decimal("500"))
    state = MemberTier.objects.get(member=member)
    assert state.tier == tiers["银卡"] and state.grace_until is None
    assert kinds(member.pk) == ["upgrade", "grace", "retain"]


def test_hand_set_tier_needs_reason_and_future_end_and_ends_on_its_date(
    tiers: dict[str, Tier],
) -> None:
    member = MemberFactory()
    later = timezone.now() + timedelta(days=30)
    for reason, until, code in [
        ("", later, "tier_reason_required"),
        ("VIP 客诉补偿", timezone.now() - timedelta(days=1), "tier_until_past"),
        ("VIP 客诉补偿", timezone.now() + timedelta(days=2000), "tier_until_too_far"),
    ]:
        with pytest.raises(TierError) as refused:
            tier_set_manual(
                member_id=member.pk, tier=tiers["金卡"], reason=reason, until=until, actor=None
            )
        assert refused.value.code == code
    assert not TierChange.objects.exists() and not MemberTier.objects.exists()
    tier_set_manual(
        member_id=member.pk, tier=tiers["金卡"], reason="VIP 客诉补偿", until=later, actor=None
    )
    assert tier_card(member_id=member.pk).tier == tiers["金卡"]
    assert AuditEvent.objects.filter(action="tier.set_manual").count() == 1
    counts = tiers_review(now=later + timedelta(minutes=1))
    assert counts.manual_ended == 1
    assert tier_card(member_id=member.pk, now=later + timedelta(minutes=1)).tier is None
    assert kinds(member.pk) == ["manual_set", "manual_end"]


def test_the_tier_multiplier_raises_activity_points(tiers: dict[str, Tier]) -> None:
    member = MemberFactory()
    points_award(member_id=member.pk, event="purchase", reference="o1", amount_paid=Decimal("6000"))
    award = points_award(member_id=member.pk, event="review", reference="r1")
    assert (award.points, award.multiplier) == (30, Decimal("1.5"))


def test_orders_earn_growth_and_refunds_take_it_back_in_proportion(
    tiers: dict[str, Tier],
) -> None:
    from members.services.orders import order_record, order_refund

    member = MemberFactory()
    order = order_record(
        channel="pos",
        external_id="P-1",
        member=member,
        paid_at=timezone.now() - timedelta(hours=1),
        amount="1299.00",
    )
    assert growth_balance(member.pk) == 1299
    assert tier_card(member_id=member.pk).tier == tiers["银卡"]
    order_refund(order=order, amount="649.50")
    assert growth_balance(member.pk) == 1299 - 649
    order_refund(order=order, amount="649.50")
    assert growth_balance(member.pk) == 0
    # The tier reached stays until its review: refunds do not downgrade on the spot.
    assert tier_card(member_id=member.pk).tier == tiers["银卡"]


def growth_balance(member_id: int) -> int:
    from members.models import PointsAccount

    account = PointsAccount.objects.filter(member_id=member_id, kind="growth").first()
    return account.balance if account else 0


def test_the_growth_sweep_credits_bulk_orders_once_and_upgrades_tiers(
    tiers: dict[str, Tier],
) -> None:
    from members.models import LedgerEntry, TierChange
    from members.services.growth_sweep import growth_sweep_run
    from members.services.orders import order_record
    from members.services.points import points_invariant_violations
    from tests.members.factories import OrderFactory

    big, small = MemberFactory(), MemberFactory()
    for n in range(3):
        OrderFactory(member=big, amount=Decimal("2000.00"), external_id=f"imp-{n}")
    OrderFactory(member=small, amount=Decimal("120.50"), external_id="imp-s")
    OrderFactory(
        member=small,
        amount=Decimal("99.00"),
        refunded_amount=Decimal("99.00"),
        status="refunded",
        external_id="imp-r",
    )
    inline = order_record(
        channel="pos",
        external_id="inline-1",
        member=small,
        paid_at=timezone.now() - timedelta(hours=1),
        amount="10.00",
    )
    first = growth_sweep_run()
    assert (first.credited, growth_balance(big.pk), growth_balance(small.pk)) == (4, 6000, 130)
    assert tier_card(member_id=big.pk).tier == tiers["金卡"]
    assert TierChange.objects.filter(member=big, kind="upgrade").count() == 1
    again = growth_sweep_run()
    assert again.credited == 0 and growth_balance(big.pk) == 6000
    assert (
        LedgerEntry.objects.filter(
            source="event:purchase", external_id=f"order:{inline.pk}"
        ).count()
        == 1
    )
    assert points_invariant_violations() == []
