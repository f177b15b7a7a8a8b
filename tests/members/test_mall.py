"""Coupons and the points mall: issuing within limits, using, revoking, expiring,
birthday gifts, redeeming and cancelling; refusals change nothing; stock and points are
never oversold under parallel redemptions."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from members.models import (
    Coupon,
    CouponLog,
    CouponTemplate,
    LedgerEntry,
    PointsAccount,
    Redemption,
    Reward,
    Tier,
)
from members.services.coupons import (
    CouponError,
    birthday_coupons_issue,
    coupon_issue,
    coupon_revoke,
    coupon_use,
    coupons_expire_due,
)
from members.services.errors import MemberError, NotFound
from members.services.mall import MallError, redemption_cancel, reward_redeem
from members.services.points import PointsError, points_earn, points_invariant_violations
from members.services.tiers import tier_set_manual
from tests.members.factories import MemberFactory
from tests.org.factories import StoreFactory

pytestmark = pytest.mark.django_db


def template(**kw: object) -> CouponTemplate:
    defaults: dict[str, object] = {
        "name": "满100减10",
        "kind": "amount_off",
        "amount_off": Decimal(10),
    }
    return CouponTemplate.objects.create(**{**defaults, **kw})


def reward(**kw: object) -> Reward:
    coupon = kw.pop("coupon_template", None) or template(name="兑换券")
    defaults: dict[str, object] = {
        "name": "10元券",
        "kind": "coupon",
        "coupon_template": coupon,
        "points_price": 100,
        "stock": 5,
    }
    return Reward.objects.create(**{**defaults, **kw})


def give(member_id: int, points: int) -> None:
    points_earn(
        member_id=member_id,
        kind="activity",
        amount=points,
        source="gift",
        external_id=f"g{member_id}-{points}",
    )


def balance(member_id: int) -> int:
    account = PointsAccount.objects.filter(member_id=member_id, kind="activity").first()
    return account.balance if account else 0


def test_issue_is_once_per_reference_and_logged() -> None:
    member = MemberFactory()
    coupons = template(valid_days=7)
    first = coupon_issue(template=coupons, member_id=member.pk, source="hq", source_ref="c1")
    again = coupon_issue(template=coupons, member_id=member.pk, source="hq", source_ref="c1")
    assert first.pk == again.pk and len(first.code) == 12
    assert first.valid_until - first.issued_at == timedelta(days=7)
    assert list(CouponLog.objects.values_list("action", flat=True)) == ["issued"]
    coupons.refresh_from_db()
    assert coupons.issued_count == 1


def test_per_member_and_total_limits_refuse_and_write_nothing() -> None:
    member, other = MemberFactory(), MemberFactory()
    coupons = template(per_member_limit=1, total_limit=2)
    coupon_issue(template=coupons, member_id=member.pk, source="hq", source_ref="a")
    with pytest.raises(CouponError) as limit:
        coupon_issue(template=coupons, member_id=member.pk, source="hq", source_ref="b")
    assert limit.value.code == "coupon_limit_reached"
    coupon_issue(template=coupons, member_id=other.pk, source="hq", source_ref="c")
    with pytest.raises(CouponError) as sold_out:
        coupon_issue(template=coupons, member_id=MemberFactory().pk, source="hq", source_ref="d")
    assert sold_out.value.code == "coupon_sold_out"
    assert Coupon.objects.count() == 2
    coupons.refresh_from_db()
    assert coupons.issued_count == 2


def test_use_checks_status_expiry_and_store() -> None:
    member = MemberFactory()
    allowed, elsewhere = StoreFactory(), StoreFactory()
    coupons = template()
    coupons.stores.add(allowed)
    coupon = coupon_issue(template=coupons, member_id=member.pk, source="hq", source_ref="u")
    with pytest.raises(CouponError) as wrong_store:
        coupon_use(coupon_id=coupon.pk, store_id=elsewhere.pk)
    assert wrong_store.value.code == "coupon_wrong_store"
    assert coupon_use(coupon_id=coupon.pk, store_id=allowed.pk).status == "used"
    with pytest.raises(CouponError) as twice:
        coupon_use(coupon_id=coupon.pk)
    assert twice.value.code == "coupon_not_usable"
    with pytest.raises(NotFound):
        coupon_use(coupon_id=coupon.pk + 999)


def test_revoke_needs_a_reason_and_an_unused_coupon() -> None:
    member = MemberFactory()
    coupon = coupon_issue(template=template(), member_id=member.pk, source="hq", source_ref="r")
    with pytest.raises(CouponError):
        coupon_revoke(coupon_id=coupon.pk, reason="", actor=None)
    coupon.refresh_from_db()
    assert coupon.status == "issued"
    coupon_revoke(coupon_id=coupon.pk, reason="误发", actor=None)
    coupon.refresh_from_db()
    assert coupon.status == "revoked"
    assert list(coupon.log.values_list("action", "note")) == [("issued", "hq"), ("revoked", "误发")]


def test_expiry_sweeps_unused_coupons_past_their_date() -> None:
    member = MemberFactory()
    old = coupon_issue(
        template=template(valid_days=1),
        member_id=member.pk,
        source="hq",
        source_ref="old",
        now=timezone.now() - timedelta(days=2),
    )
    fresh = coupon_issue(template=template(), member_id=member.pk, source="hq", source_ref="new")
    assert coupons_expire_due() == 1
    assert Coupon.objects.get(pk=old.pk).status == "expired"
    assert Coupon.objects.get(pk=fresh.pk).status == "issued"
    assert coupons_expire_due() == 0


def test_birthday_gifts_follow_the_tier_and_come_once_a_year() -> None:
    gift = template(name="生日礼券")
    gold = Tier.objects.create(name="金卡", rank=2, threshold=5000, birthday_coupon=gift)
    today = date(2027, 3, 1)
    gold_member = MemberFactory(birthday=date(1990, 3, 1))
    MemberFactory(birthday=date(1991, 3, 1))  # no tier: no gift
    MemberFactory(birthday=date(1990, 3, 2))  # not today
    tier_set_manual(
        member_id=gold_member.pk,
        tier=gold,
        reason="VIP",
        until=timezone.now() + timedelta(days=30),
        actor=None,
    )
    assert birthday_coupons_issue(today=today) == 1
    assert birthday_coupons_issue(today=today) == 0
    assert Coupon.objects.get().member_id == gold_member.pk


def test_leap_day_birthdays_are_celebrated_on_28_february() -> None:
    gift = template(name="生日礼券")
    tier = Tier.objects.create(name="银卡", rank=1, threshold=1, birthday_coupon=gift)
    leapling = MemberFactory(birthday=date(2000, 2, 29))
    tier_set_manual(
        member_id=leapling.pk,
        tier=tier,
        reason="VIP",
        until=timezone.now() + timedelta(days=9),
        actor=None,
    )
    assert birthday_coupons_issue(today=date(2027, 2, 28)) == 1


def test_redeem_spends_points_takes_stock_and_issues_the_coupon() -> None:
    member = MemberFactory()
    give(member.pk, 250)
    item = reward()
    redemption = reward_redeem(member_id=member.pk, reward_id=item.pk, key="k1")
    assert redemption.points == 100 and redemption.coupon is not None
    assert redemption.coupon.source_ref == f"redemption:{redemption.pk}"
    assert balance(member.pk) == 150
    item.refresh_from_db()
    assert item.stock == 4
    again = reward_redeem(member_id=member.pk, reward_id=item.pk, key="k1")
    assert again.pk == redemption.pk and balance(member.pk) == 150
    assert points_invariant_violations() == []


@pytest.mark.parametrize(
    ("setup", "code", "error"),
    [
        ({"stock": 0}, "reward_out_of_stock", MallError),
        ({"active": False}, "reward_unavailable", MallError),
        ({"available_until": "past"}, "reward_expired", MallError),
        ({"points_price": 999}, "points_insufficient", PointsError),
        ({"min_tier": "gold"}, "reward_tier_too_low", MallError),
    ],
)
def test_refused_redemptions_write_nothing(
    setup: dict[str, object], code: str, error: type[MemberError]
) -> None:
    member = MemberFactory()
    give(member.pk, 500)
    if setup.get("available_until") == "past":
        setup = {"available_until": timezone.now() - timedelta(days=1)}
    if setup.get("min_tier") == "gold":
        setup = {"min_tier": Tier.objects.create(name="金卡", rank=2, threshold=5000)}
    item = reward(**setup)
    stock_before = item.stock
    with pytest.raises(error) as refused:
        reward_redeem(member_id=member.pk, reward_id=item.pk, key="k")
    assert refused.value.code == code
    item.refresh_from_db()
    assert item.stock == stock_before and balance(member.pk) == 500
    assert Redemption.objects.count() == 0 and Coupon.objects.count() == 0
    assert LedgerEntry.objects.filter(source="mall").count() == 0


def test_per_member_limit_and_unknown_reward() -> None:
    member = MemberFactory()
    give(member.pk, 1000)
    item = reward(per_member_limit=1)
    reward_redeem(member_id=member.pk, reward_id=item.pk, key="a")
    with pytest.raises(MallError) as limit:
        reward_redeem(member_id=member.pk, reward_id=item.pk, key="b")
    assert limit.value.code == "reward_limit_reached"
    with pytest.raises(NotFound):
        reward_redeem(member_id=member.pk, reward_id=item.pk + 999, key="c")
    assert balance(member.pk) == 900


def test_cancel_returns_points_and_stock_and_revokes_the_coupon() -> None:
    member = MemberFactory()
    give(member.pk, 300)
    item = reward()
    redemption = reward_redeem(member_id=member.pk, reward_id=item.pk, key="k")
    cancelled = redemption_cancel(redemption_id=redemption.pk, member_id=member.pk)
    assert cancelled.status == "cancelled"
    assert balance(member.pk) == 300
    item.refresh_from_db()
    assert item.stock == 5
    assert Coupon.objects.get().status == "revoked"
    redemption_cancel(redemption_id=redemption.pk)  # twice: nothing more happens
    assert balance(member.pk) == 300
    assert points_invariant_violations() == []


def test_a_used_coupon_cannot_be_cancelled_nor_another_members_redemption() -> None:
    member, other = MemberFactory(), MemberFactory()
    give(member.pk, 300)
    redemption = reward_redeem(member_id=member.pk, reward_id=reward().pk, key="k")
    with pytest.raises(NotFound):
        redemption_cancel(redemption_id=redemption.pk, member_id=other.pk)
    assert redemption.coupon is not None
    coupon_use(coupon_id=redemption.coupon.pk)
    with pytest.raises(MallError) as used:
        redemption_cancel(redemption_id=redemption.pk)
    assert used.value.code == "redemption_coupon_used"
    assert balance(member.pk) == 200


@pytest.mark.django_db(transaction=True)
def test_parallel_redemptions_never_oversell_stock_or_points() -> None:
    item = reward(stock=3, points_price=100)
    members = [MemberFactory() for _ in range(6)]
    for member in members:
        give(member.pk, 100)
    rich = MemberFactory()
    give(rich.pk, 250)  # can afford two
    outcomes: list[object] = []
    barrier = threading.Barrier(10)

    def go(member_id: int, key: str) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(reward_redeem(member_id=member_id, reward_id=item.pk, key=key))
        except Exception as exc:  # collected and checked below
            outcomes.append(exc)
        finally:
            connection.close()

    calls = [(m.pk, "k") for m in members] + [(rich.pk, f"r{n}") for n in range(4)]
    threads = [threading.Thread(target=go, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done = [o for o in outcomes if isinstance(o, Redemption)]
    refused = [o for o in outcomes if isinstance(o, MemberError)]
    assert len(done) == 3 and len(refused) == 7, outcomes
    item.refresh_from_db()
    assert item.stock == 0
    assert Coupon.objects.count() == 3
    assert all(balance(m.pk) >= 0 for m in [*members, rich])
    assert points_invariant_violations() == []
