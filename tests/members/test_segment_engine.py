"""The live-count engine against the SQL evaluation: for hundreds of random rule trees
over a varied data set, and for every role, both select exactly the same members."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from members.models import Member, MemberTier, PointsAccount, Tier
from members.segments.engine import ENGINE, build_snapshot
from members.segments.evaluate import check_rules, rule_members
from members.segments.random_trees import random_tree, vocabulary
from members.services.orders import LineInput, order_record, order_refund
from members.services.rfm import rfm_nightly, rfm_recount
from members.services.tags import member_tag_add
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied_pool(org: Org) -> None:
    """Members with every kind of fact rules can ask about, some missing each."""
    rng = random.Random(7)
    now = timezone.now()
    today = timezone.localdate()
    stores = [org.a1, org.a2, org.b1]
    tags = [TagFactory(group=TagGroupFactory(name=f"组{n}")) for n in range(4)]
    silver = Tier.objects.create(name="银卡", rank=1, threshold=1000, retain_threshold=500)
    gold = Tier.objects.create(name="金卡", rank=2, threshold=5000, retain_threshold=2500)
    categories = ["奶粉", "纸尿裤", "护肤", ""]
    for n in range(120):
        member = MemberFactory(
            gender=rng.choice("fmu"),
            city=rng.choice(["上海", "北京", "杭州", ""]),
            home_store=rng.choice(stores),
            birthday=None if n % 5 == 0 else today - timedelta(days=rng.randrange(6000, 20000)),
            member_since=None if n % 7 == 0 else now - timedelta(days=rng.randrange(0, 800)),
            source_channel=rng.choice(["store", "mini_program", "tmall", "jd", "wecom", "pos"]),
            lifecycle_stage=rng.choice(["prospect", "member", "new", "repeat", "loyal"]),
            guide=org.guide_a1 if n % 9 == 0 else None,
        )
        for tag in tags:
            if rng.random() < 0.3:
                member_tag_add(member=member, tag=tag)
        if n % 4 == 0:
            MemberTier.objects.create(
                member=member,
                tier=rng.choice([silver, gold, None]),
                manual_tier=gold if n % 8 == 0 else None,
                manual_until=now + timedelta(days=rng.choice([-3, 30])) if n % 8 == 0 else None,
            )
        for _ in range(rng.randrange(0, 6)):
            order = order_record(
                channel="pos",
                external_id=f"ENG{n:03d}-{rng.randrange(10**9)}",
                member=member,
                paid_at=now - timedelta(days=rng.randrange(0, 500), hours=rng.randrange(24)),
                amount=Decimal(rng.choice(["99.00", "299.50", "1280.00", "45.10"])),
                lines=[
                    LineInput(
                        sku=f"SKU-{rng.randrange(5)}",
                        product_name="商品",
                        quantity=1,
                        unit_price=Decimal("10"),
                        category=rng.choice(categories),
                    )
                    for _ in range(rng.randrange(1, 3))
                ],
            )
            if rng.random() < 0.1:
                order_refund(order=order, amount=order.amount)
        if rng.random() < 0.5:
            PointsAccount.objects.update_or_create(
                member=member,
                kind="activity",
                defaults={"balance": rng.choice([0, 50, 600, 3000])},
            )
    rfm_recount()
    rfm_nightly()


def test_random_trees_count_the_same_as_sql_for_every_role(org: Org, varied_pool: None) -> None:
    snapshot = build_snapshot()
    ENGINE.snapshot = snapshot
    try:
        words = vocabulary()
        rng = random.Random(2026)
        moment = timezone.now()
        users = [
            org.hq_admin,
            org.region_manager_a,
            org.store_manager_a1,
            org.guide_a1,
        ]
        checked = 0
        for index in range(300):
            raw = random_tree(rng, words, rng.randrange(2, 13))
            user = users[index % len(users)]
            tree = check_rules(raw, user=org.hq_admin)
            expected = set(rule_members(tree, user=user, now=moment).values_list("pk", flat=True))
            count, mask = ENGINE.count(tree, user=user, now=moment)
            got = {int(i) for i in snapshot.ids[np.flatnonzero(mask)]}
            assert got == expected, json.dumps(raw, ensure_ascii=False)
            assert count == len(expected)
            checked += bool(expected)
        assert checked > 50  # most trees select somebody: the comparison is not vacuous
    finally:
        ENGINE.snapshot = None


def test_every_field_alone_matches_sql(org: Org, varied_pool: None) -> None:
    """One condition per field and operator, so no field hides behind a tree."""
    snapshot = build_snapshot()
    ENGINE.snapshot = snapshot
    words = vocabulary()
    today = timezone.localdate()
    moment = timezone.now()
    singles = [
        {"field": "gender", "operator": "in", "value": ["f"]},
        {"field": "age", "operator": "between", "value": [20, 40]},
        {"field": "age", "operator": "between", "value": [None, 30]},
        {"field": "city", "operator": "in", "value": ["上海", "不存在"]},
        {"field": "home_store", "operator": "in", "value": [org.a1.pk]},
        {"field": "tier", "operator": "in", "value": words.tiers[-1:]},
        {"field": "tier", "operator": "none"},
        {"field": "lifecycle_stage", "operator": "in", "value": ["repeat"]},
        {"field": "member_since", "operator": "within_days", "value": 100},
        {"field": "member_since", "operator": "before_days", "value": 100},
        {
            "field": "member_since",
            "operator": "between",
            "value": [str(today - timedelta(days=300)), str(today - timedelta(days=30))],
        },
        {"field": "source_channel", "operator": "in", "value": ["tmall", "jd"]},
        {"field": "tags", "operator": "any", "value": words.tags[:2]},
        {"field": "tags", "operator": "all", "value": words.tags[:2]},
        {"field": "tags", "operator": "none", "value": words.tags[:2]},
        {"field": "activity_points", "operator": "gte", "value": 600},
        {"field": "growth_value", "operator": "between", "value": [100.5, 2000]},
        {"field": "order_count", "operator": "gte", "value": 2},
        {"field": "order_count", "operator": "lte", "value": 1, "days": 90},
        {"field": "order_amount", "operator": "gte", "value": 300.01},
        {"field": "order_amount", "operator": "between", "value": [99, 1379.5], "days": 180},
        {"field": "last_purchase", "operator": "within_days", "value": 60},
        {"field": "last_purchase", "operator": "not_within_days", "value": 60},
        {"field": "last_purchase", "operator": "never"},
        {"field": "bought", "operator": "category", "value": "奶粉", "days": 200, "min_times": 2},
        {"field": "bought", "operator": "sku", "value": "SKU-1"},
        {"field": "bought", "operator": "category", "value": "从未卖过"},
        {"field": "rfm_class", "operator": "in", "value": ["HHH", "LLL", "HLH"]},
        {"field": "rfm_class", "operator": "none"},
        {"field": "rfm_r", "operator": "between", "value": [4, 5]},
        {"field": "rfm_f", "operator": "between", "value": [2, None]},
        {"field": "rfm_m", "operator": "between", "value": [None, 3]},
        {"field": "value_matrix", "operator": "in", "value": ["fans", "core"]},
    ]
    try:
        for raw in singles:
            for wrapped in ({"op": "and", "rules": [raw]}, {"op": "not", "rules": [raw]}):
                tree = check_rules(wrapped, user=org.hq_admin)
                expected = set(
                    rule_members(tree, user=org.hq_admin, now=moment).values_list("pk", flat=True)
                )
                _count, mask = ENGINE.count(tree, user=org.hq_admin, now=moment)
                got = {int(i) for i in snapshot.ids[np.flatnonzero(mask)]}
                assert got == expected, json.dumps(wrapped, ensure_ascii=False)
    finally:
        ENGINE.snapshot = None


def test_builder_endpoint_uses_the_snapshot_and_says_when(
    client: Client, org: Org, varied_pool: None, settings: Any
) -> None:
    settings.SEGMENT_ENGINE = True
    settings.SEGMENT_ENGINE_MAX_AGE = 3600
    ENGINE.snapshot = build_snapshot()
    try:
        client.force_login(org.store_manager_a1)
        rules = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}
        body = client.post(
            "/hq/segments/count/", json.dumps({"rules": rules}), content_type="application/json"
        ).json()
        assert body["source"] == "snapshot" and body["as_of"]
        women = Member.objects.filter(home_store=org.a1, gender="f")
        assert body["count"] == women.count()
        newest = list(women.order_by("-id").values_list("id", flat=True)[:10])
        assert [row["id"] for row in body["sample"]] == newest
    finally:
        ENGINE.snapshot = None
