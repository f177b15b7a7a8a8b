"""Points in the mini-program API and earning by rule: sign-in, caps, bonus days,
points history, the member card, and Idempotency-Key handling."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from members.models import (
    BonusPeriod,
    EarnRule,
    IdempotentRequest,
    LedgerEntry,
    PointsAccount,
)
from members.services.earning import earn_rules_ensure_defaults, points_award
from members.services.points import PointsError, points_invariant_violations
from tests.members.factories import MemberFactory, SandboxLoginCodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def default_rules(django_db_blocker: Any) -> None:
    # Migration 0007 seeds them, but transactional tests elsewhere flush the tables.
    with django_db_blocker.unblock():
        earn_rules_ensure_defaults()


def login(client: Client) -> tuple[int, dict[str, str]]:
    code = SandboxLoginCodeFactory()
    tokens = client.post(
        "/api/v1/auth/wechat-login", {"code": code.code}, content_type="application/json"
    ).json()
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}").json()
    return me["id"], {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}


def sign_in(client: Client, auth: dict[str, str], key: str | None, **body: Any) -> Any:
    headers = dict(auth)
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post("/api/v1/me/sign-in", body, content_type="application/json", **headers)


def balance(member_id: int) -> int:
    account = PointsAccount.objects.filter(member_id=member_id, kind="activity").first()
    return account.balance if account else 0


def test_sign_in_earns_once_a_day(client: Client) -> None:
    member_id, auth = login(client)
    first = sign_in(client, auth, "k1")
    assert first.status_code == 200
    assert first.json() == {"points": 5, "balance": 5, "already_signed_in": False}
    second = sign_in(client, auth, "k2")
    assert second.json() == {"points": 0, "balance": 5, "already_signed_in": True}
    assert balance(member_id) == 5
    assert LedgerEntry.objects.filter(source="event:sign_in").count() == 1


def test_a_replayed_key_returns_the_first_answer_without_running_again(client: Client) -> None:
    member_id, auth = login(client)
    first = sign_in(client, auth, "same")
    replay = sign_in(client, auth, "same")
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replay"] == "true"
    assert balance(member_id) == 5 and IdempotentRequest.objects.count() == 1


def test_the_same_key_with_another_body_is_refused_with_422(client: Client) -> None:
    member_id, auth = login(client)
    sign_in(client, auth, "same")
    other = sign_in(client, auth, "same", note="different")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert balance(member_id) == 5


def test_a_duplicate_arriving_while_the_first_runs_gets_409(client: Client) -> None:
    member_id, auth = login(client)
    IdempotentRequest.objects.create(
        member_id=member_id,
        key="busy",
        endpoint="sign-in",
        body_hash=_hash_of_empty_sign_in(),
    )
    busy = sign_in(client, auth, "busy")
    assert busy.status_code == 409 and busy.json()["code"] == "request_in_progress"
    assert balance(member_id) == 0


def _hash_of_empty_sign_in() -> str:
    import hashlib

    return hashlib.sha256(b"/api/v1/me/sign-in\n{}").hexdigest()


def test_a_missing_or_oversized_key_is_refused_and_changes_nothing(client: Client) -> None:
    member_id, auth = login(client)
    missing = sign_in(client, auth, None)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_missing"
    too_long = sign_in(client, auth, "x" * 101)
    assert too_long.status_code == 400
    assert balance(member_id) == 0 and IdempotentRequest.objects.count() == 0


def test_sign_in_needs_a_signed_in_member(client: Client) -> None:
    response = client.post("/api/v1/me/sign-in", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 401
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_eight_simultaneous_sign_ins_with_one_key_apply_once() -> None:
    client = Client()
    member_id, auth = login(client)
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def go() -> None:
        try:
            barrier.wait(timeout=10)
            codes.append(sign_in(Client(), auth, "race").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(codes) == 8 and set(codes) <= {200, 409} and 200 in codes
    assert balance(member_id) == 5
    assert points_invariant_violations() == []


def test_points_history_is_paginated_newest_first_and_filtered(client: Client) -> None:
    member_id, auth = login(client)
    for n in range(3):
        points_award(member_id=member_id, event="share", reference=f"share-{n}")
    points_award(
        member_id=member_id, event="purchase", reference="order-1", amount_paid=Decimal("88.80")
    )
    page = client.get("/api/v1/me/points", **auth).json()
    assert page["count"] == 4
    assert [e["amount"] for e in page["results"]] == [88, 5, 5, 5]
    assert page["results"][1]["expires_at"] is not None
    growth = client.get("/api/v1/me/points?account=growth", **auth).json()
    assert [e["account"] for e in growth["results"]] == ["growth"]
    bad = client.get("/api/v1/me/points?account=cash", **auth)
    assert bad.status_code == 400 and bad.json()["code"] == "account_invalid"


def test_another_members_points_never_show(client: Client) -> None:
    other = MemberFactory()
    points_award(member_id=other.pk, event="share", reference="theirs")
    _member_id, auth = login(client)
    assert client.get("/api/v1/me/points", **auth).json()["count"] == 0


def test_the_member_card_carries_the_balances(client: Client) -> None:
    member_id, auth = login(client)
    sign_in(client, auth, "k")
    points_award(member_id=member_id, event="purchase", reference="o1", amount_paid=Decimal("120"))
    card = client.get("/api/v1/me/", **auth).json()
    assert card["points"]["activity"] == 5 and card["points"]["spendable"] == 5
    assert card["points"]["growth"] == 120
    assert card["points"]["expiring_soon"] == 0
    assert card["tier"]["current"] is None and card["tier"]["next"] is None


def test_the_member_card_shows_tier_and_progress(client: Client) -> None:
    from members.models import Tier

    silver = Tier.objects.create(name="银卡", rank=1, threshold=1000, discount_rate=Decimal("0.95"))
    Tier.objects.create(name="金卡", rank=2, threshold=5000, free_delivery=True)
    member_id, auth = login(client)
    points_award(member_id=member_id, event="purchase", reference="o1", amount_paid=Decimal("1200"))
    tier = client.get("/api/v1/me/", **auth).json()["tier"]
    assert tier["current"]["name"] == silver.name and tier["current"]["discount_rate"] == "0.95"
    assert tier["next"]["name"] == "金卡" and tier["next"]["free_delivery"] is True
    assert (tier["growth_in_window"], tier["to_next"]) == (1200, 3800)
    assert tier["valid_until"] is not None


def test_daily_caps_cut_awards_and_bonus_periods_multiply() -> None:
    member = MemberFactory()
    awards = [points_award(member_id=member.pk, event="share", reference=f"s{n}") for n in range(5)]
    assert [a.points for a in awards] == [5, 5, 5, 5, 0]
    assert awards[-1].capped and awards[-1].result is None
    now = timezone.now()
    BonusPeriod.objects.create(
        name="双倍积分日",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        multiplier=Decimal("2"),
        events=["review"],
    )
    review = points_award(member_id=member.pk, event="review", reference="r1")
    assert (review.points, review.multiplier) == (40, Decimal("2"))
    assert balance(member.pk) == 60


def test_monthly_caps_count_the_whole_month() -> None:
    member = MemberFactory()
    EarnRule.objects.filter(event="review").update(daily_cap=None, monthly_cap=50)
    got = [
        points_award(member_id=member.pk, event="review", reference=f"r{n}").points
        for n in range(4)
    ]
    assert got == [20, 20, 10, 0]


def test_an_event_without_an_active_rule_is_refused() -> None:
    member = MemberFactory()
    EarnRule.objects.filter(event="like").update(active=False)
    with pytest.raises(PointsError) as refused:
        points_award(member_id=member.pk, event="like", reference="l1")
    assert refused.value.code == "earn_rule_missing"
    assert LedgerEntry.objects.count() == 0


def _mall_reward(**kw: Any) -> Any:
    from members.models import CouponTemplate, Reward

    coupon = CouponTemplate.objects.create(name="10元券", kind="amount_off", amount_off=10)
    return Reward.objects.create(
        **{
            "name": "10元券",
            "kind": "coupon",
            "coupon_template": coupon,
            "points_price": 50,
            "stock": 2,
            **kw,
        }
    )


def test_redeem_through_the_api_then_list_coupons_and_cancel(client: Client) -> None:
    from members.services.points import points_earn

    member_id, auth = login(client)
    points_earn(member_id=member_id, kind="activity", amount=120, source="t", external_id="t1")
    item = _mall_reward()
    rewards = client.get("/api/v1/rewards", **auth).json()
    assert [r["name"] for r in rewards["results"]] == ["10元券"]
    assert rewards["results"][0]["in_stock"] is True
    url = f"/api/v1/rewards/{item.pk}/redeem"
    done = client.post(url, HTTP_IDEMPOTENCY_KEY="r1", **auth)
    assert done.status_code == 201, done.json()
    body = done.json()
    assert body["points"] == 50 and body["balance"] == 70 and len(body["coupon"]["code"]) == 12
    replay = client.post(url, HTTP_IDEMPOTENCY_KEY="r1", **auth)
    assert replay.status_code == 201 and replay.json()["id"] == body["id"]
    assert balance(member_id) == 70
    coupons = client.get("/api/v1/me/coupons?status=issued", **auth).json()
    assert [c["code"] for c in coupons["results"]] == [body["coupon"]["code"]]
    assert client.get("/api/v1/me/", **auth).json()["coupon_count"] == 1
    cancel = client.post(
        f"/api/v1/me/redemptions/{body['id']}/cancel", HTTP_IDEMPOTENCY_KEY="c1", **auth
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert balance(member_id) == 120
    assert client.get("/api/v1/me/", **auth).json()["coupon_count"] == 0


def test_api_redemption_refusals_answer_clearly_and_change_nothing(client: Client) -> None:
    from members.models import Redemption
    from members.services.points import points_earn

    member_id, auth = login(client)
    points_earn(member_id=member_id, kind="activity", amount=60, source="t", external_id="t1")
    pricey = _mall_reward(points_price=100)
    empty = _mall_reward(stock=0)
    cases = [
        (f"/api/v1/rewards/{pricey.pk}/redeem", 409, "points_insufficient"),
        (f"/api/v1/rewards/{empty.pk}/redeem", 409, "reward_out_of_stock"),
        (f"/api/v1/rewards/{empty.pk + 999}/redeem", 404, "reward_not_found"),
    ]
    for n, (url, code, error) in enumerate(cases):
        response = client.post(url, HTTP_IDEMPOTENCY_KEY=f"x{n}", **auth)
        assert (response.status_code, response.json()["code"]) == (code, error)
    assert client.post(cases[0][0], **auth).status_code == 400  # no Idempotency-Key
    assert balance(member_id) == 60 and Redemption.objects.count() == 0
    bad_status = client.get("/api/v1/me/coupons?status=lost", **auth)
    assert bad_status.status_code == 400


def test_a_member_cannot_cancel_another_members_redemption(client: Client) -> None:
    from members.services.mall import reward_redeem
    from members.services.points import points_earn

    other = MemberFactory()
    points_earn(member_id=other.pk, kind="activity", amount=60, source="t", external_id="o1")
    theirs = reward_redeem(member_id=other.pk, reward_id=_mall_reward().pk, key="k")
    _member_id, auth = login(client)
    response = client.post(
        f"/api/v1/me/redemptions/{theirs.pk}/cancel", HTTP_IDEMPOTENCY_KEY="c", **auth
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "done" and balance(other.pk) == 10


def test_the_member_card_costs_two_queries_whatever_the_member_holds(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    from members.models import CouponTemplate, Tier
    from members.services.coupons import coupon_issue
    from members.services.points import points_balances
    from members.services.tiers import tier_card, tier_set_manual

    silver = Tier.objects.create(name="银卡", rank=1, threshold=100)
    gold = Tier.objects.create(name="金卡", rank=2, threshold=5000)
    member_id, auth = login(client)
    for n in range(15):
        sign_in(client, auth, f"k{n}")
        points_award(member_id=member_id, event="share", reference=f"s{n}")
        points_award(
            member_id=member_id, event="purchase", reference=f"o{n}", amount_paid=Decimal("30")
        )
    template = CouponTemplate.objects.create(name="券", kind="amount_off", amount_off=5)
    for n in range(12):
        coupon_issue(template=template, member_id=member_id, source="t", source_ref=f"c{n}")
    tier_set_manual(
        member_id=member_id,
        tier=gold,
        reason="VIP",
        until=timezone.now() + timedelta(days=5),
        actor=None,
    )
    with django_assert_max_num_queries(2):  # the session (with the member) and the card
        card = client.get("/api/v1/me/", **auth).json()
    balances = points_balances(member_id=member_id)
    assert card["points"]["activity"] == balances.activity
    assert card["points"]["growth"] == balances.growth == 450
    assert card["coupon_count"] == 12
    expected = tier_card(member_id=member_id)
    assert card["tier"]["current"]["name"] == expected.tier.name == gold.name
    assert card["tier"]["next"] is None and silver.pk


def test_the_card_payload_matches_its_documented_serializer(client: Client) -> None:
    from members.api.card import member_card_payload
    from members.api.serializers import MemberCardOutput
    from members.models import Member, Tier

    Tier.objects.create(name="银卡", rank=1, threshold=10)
    member_id, auth = login(client)
    points_award(member_id=member_id, event="purchase", reference="o", amount_paid=Decimal("25"))
    sign_in(client, auth, "k")
    member = Member.objects.select_related("home_store").get(pk=member_id)
    assert member_card_payload(member) == MemberCardOutput(member).data
    assert client.get("/api/v1/me/", **auth).json() == member_card_payload(member)


def test_a_revoked_or_forged_token_is_refused(client: Client) -> None:
    from django.core import signing

    from members.services.auth import ACCESS_SALT

    _member_id, auth = login(client)
    client.post("/api/v1/auth/logout", **auth)
    assert client.get("/api/v1/me/", **auth).status_code == 401
    for sid in ("1", None, [1], 10**12):
        forged = signing.dumps({"sid": sid}, salt=ACCESS_SALT)
        response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {forged}")
        assert response.status_code == 401
