"""HQ loyalty pages: settings (tiers, rules, bonus periods, coupons, rewards), the member
profile's points, tier and coupon sections, and the per-member actions; refusals change
nothing and stores' staff cannot reach head-office settings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from members.models import (
    BonusPeriod,
    Coupon,
    CouponTemplate,
    EarnRule,
    LedgerEntry,
    PointsAccount,
    Reward,
    Tier,
    TierChange,
)
from members.services.coupons import coupon_issue
from members.services.earning import earn_rules_ensure_defaults
from members.services.points import points_earn
from scrm.core.models import AuditEvent
from tests.conftest import Org

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rules() -> None:
    earn_rules_ensure_defaults()


def test_settings_overview_lists_every_setting_with_empty_states(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    page = client.get("/hq/loyalty/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "每日签到" in html  # the seeded earn rules, in Chinese
    assert "积分商城" in html or "Points mall" in html
    for testid in ("tiers", "earn-rules", "bonus-periods", "coupon-templates", "rewards"):
        assert f'data-testid="{testid}"' in html


def test_create_and_edit_a_tier_is_audited(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    form = {
        "name": "银卡",
        "rank": 1,
        "threshold": 1000,
        "window_days": 365,
        "valid_days": 365,
        "retain_threshold": 500,
        "grace_days": 30,
        "points_multiplier": "1.2",
        "discount_rate": "0.95",
    }
    response = client.post("/hq/loyalty/tier/new/", form)
    assert response.status_code == 302
    tier = Tier.objects.get()
    assert (tier.threshold, tier.points_multiplier) == (1000, Decimal("1.2"))
    edit = client.post(f"/hq/loyalty/tier/{tier.pk}/", {**form, "threshold": 1200})
    assert edit.status_code == 302
    tier.refresh_from_db()
    assert tier.threshold == 1200
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("pk")) == [
        "loyalty.tier.create",
        "loyalty.tier.update",
    ]


def test_a_tier_out_of_order_is_refused_and_nothing_is_saved(client: Client, org: Org) -> None:
    Tier.objects.create(name="银卡", rank=1, threshold=1000)
    client.force_login(org.hq_admin)
    response = client.post(
        "/hq/loyalty/tier/new/",
        {
            "name": "金卡",
            "rank": 2,
            "threshold": 800,
            "window_days": 365,
            "valid_days": 365,
            "retain_threshold": 900,
            "grace_days": 30,
            "points_multiplier": "1",
            "discount_rate": "1",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "银卡" in html  # the error names the tier it collides with
    assert Tier.objects.count() == 1 and not AuditEvent.objects.exists()


def test_rule_bonus_coupon_and_reward_forms_validate(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    rule = EarnRule.objects.get(event="share")
    bad_rule = client.post(
        f"/hq/loyalty/earn-rule/{rule.pk}/",
        {"event": "share", "account": "activity", "points": 0, "points_per_yuan": "0"},
    )
    assert bad_rule.status_code == 200
    rule.refresh_from_db()
    assert rule.points == 5
    now = timezone.now()
    bad_bonus = client.post(
        "/hq/loyalty/bonus-period/new/",
        {
            "name": "双倍",
            "starts_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": now.strftime("%Y-%m-%dT%H:%M"),
            "multiplier": "2",
        },
    )
    assert bad_bonus.status_code == 200 and not BonusPeriod.objects.exists()
    bad_coupon = client.post(
        "/hq/loyalty/coupon-template/new/",
        {"name": "折扣券", "kind": "percent_off", "min_spend": "0", "valid_days": 30},
    )
    assert bad_coupon.status_code == 200 and not CouponTemplate.objects.exists()
    good_coupon = client.post(
        "/hq/loyalty/coupon-template/new/",
        {
            "name": "九折券",
            "kind": "percent_off",
            "percent_off": 10,
            "min_spend": "0",
            "valid_days": 30,
            "active": "on",
        },
    )
    assert good_coupon.status_code == 302
    bad_reward = client.post(
        "/hq/loyalty/reward/new/",
        {"name": "券", "kind": "coupon", "points_price": 100, "stock": 5},
    )
    assert bad_reward.status_code == 200 and not Reward.objects.exists()
    assert client.get("/hq/loyalty/nothing/new/").status_code == 404
    assert client.get("/hq/loyalty/tier/999999/").status_code == 404


def test_store_staff_cannot_change_loyalty_settings_or_points(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/loyalty/").status_code == 403
    assert client.post("/hq/loyalty/tier/new/", {"name": "x"}).status_code == 403
    response = client.post(
        f"/hq/members/{org.member_a1_unassigned.pk}/points/adjust/",
        {"kind": "activity", "amount": 100, "reason": "x"},
    )
    assert response.status_code == 403
    assert not LedgerEntry.objects.exists() and not Tier.objects.exists()


def test_points_adjustment_needs_a_reason_is_audited_and_applies_once(
    client: Client, org: Org
) -> None:
    client.force_login(org.hq_operator)
    url = f"/hq/members/{org.member_a1_unassigned.pk}/points/adjust/"
    form = client.get(url)
    nonce = form.context["nonce"]
    refused = client.post(url, {"kind": "activity", "amount": 100, "reason": "", "nonce": nonce})
    assert refused.status_code == 200 and not LedgerEntry.objects.exists()
    too_much = client.post(
        url, {"kind": "activity", "amount": -5, "reason": "扣减", "nonce": nonce}
    )
    assert too_much.status_code == 200
    assert "0" in too_much.content.decode() and not LedgerEntry.objects.exists()
    data = {"kind": "activity", "amount": 100, "reason": "客诉补偿", "nonce": nonce}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # a double submit
    account = PointsAccount.objects.get(member=org.member_a1_unassigned)
    assert account.balance == 100
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.reason, entry.actor_id) == ("adjust", "客诉补偿", org.hq_operator.pk)
    assert AuditEvent.objects.filter(action="points.adjust").count() == 1


def test_adjusting_another_regions_member_is_404(client: Client, org: Org) -> None:
    client.force_login(org.region_manager_a)
    response = client.get(f"/hq/members/{org.member_b1.pk}/points/adjust/")
    assert response.status_code in (403, 404)
    assert not LedgerEntry.objects.exists()


def test_profile_shows_tier_points_and_coupons_and_hq_can_set_tier_and_revoke(
    client: Client, org: Org
) -> None:
    gold = Tier.objects.create(name="金卡", rank=1, threshold=5000)
    member = org.member_a1_unassigned
    points_earn(member_id=member.pk, kind="activity", amount=30, source="t", external_id="1")
    template = CouponTemplate.objects.create(name="10元券", kind="amount_off", amount_off=10)
    coupon = coupon_issue(template=template, member_id=member.pk, source="hq", source_ref="c")
    client.force_login(org.hq_admin)
    profile = client.get(f"/hq/members/{member.pk}/").content.decode()
    assert 'data-testid="loyalty-section"' in profile and coupon.code in profile
    until = (timezone.localdate() + timedelta(days=30)).isoformat()
    missing_reason = client.post(
        f"/hq/members/{member.pk}/tier/", {"tier": gold.pk, "until": until, "reason": ""}
    )
    assert missing_reason.status_code == 200 and not TierChange.objects.exists()
    assert (
        client.post(
            f"/hq/members/{member.pk}/tier/", {"tier": gold.pk, "until": until, "reason": "VIP"}
        ).status_code
        == 302
    )
    assert TierChange.objects.get().kind == "manual_set"
    assert client.post(f"/hq/coupons/{coupon.pk}/revoke/", {"reason": ""}).status_code == 200
    assert Coupon.objects.get().status == "issued"
    assert not AuditEvent.objects.filter(action="coupon.revoke").exists()
    assert client.post(f"/hq/coupons/{coupon.pk}/revoke/", {"reason": "误发"}).status_code == 302
    assert Coupon.objects.get().status == "revoked"
    assert AuditEvent.objects.get(action="coupon.revoke").actor_id == org.hq_admin.pk
    profile = client.get(f"/hq/members/{member.pk}/").content.decode()
    assert "金卡" in profile


def test_step_four_of_the_board_shows_points_and_tiers_for_what_the_user_sees(
    client: Client, org: Org
) -> None:
    from members.models import MemberTier

    gold = Tier.objects.create(name="金卡", rank=1, threshold=1)
    points_earn(member_id=org.member_a2.pk, kind="activity", amount=70, source="t", external_id="a")
    points_earn(member_id=org.member_b1.pk, kind="activity", amount=30, source="t", external_id="b")
    MemberTier.objects.create(member=org.member_b1, tier=gold)

    def step_four() -> list[int]:
        return [
            figure.value
            for item in client.get("/hq/").context["board"]
            if item["step"].number == 4
            for figure in item["figures"]
        ]

    from datetime import timedelta

    from django.utils import timezone

    from analytics.services import aggregates_rebuild

    # The board reads the aggregates, which the beat brings up to five minutes ago.
    aggregates_rebuild(now=timezone.now() + timedelta(minutes=10))
    client.force_login(org.hq_operator)
    assert step_four() == [0, 100, 1]  # no customer has bought yet: none active
    client.force_login(org.region_manager_a)  # region A: member_a2 only
    assert step_four() == [0, 70, 0]
