"""Segment rule trees: validation names the bad node; counts of hand-built trees match
members built to match (and not match) each condition, NOT and nested OR included."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from members.models import LifecycleStage, Member, MemberTier, PointsAccount, Tier
from members.segments.evaluate import check_rules, live_count, rule_members
from members.segments.rules import RuleError, parse_rules
from members.segments.sql import years_ago
from members.services.orders import LineInput, order_record, order_refund
from members.services.tags import member_tag_add
from tests.members.factories import MemberFactory, TagFactory


@pytest.fixture(autouse=True)
def english() -> Any:
    """Messages are checked in English (the Chinese ones come from the same strings)."""
    from django.utils import translation

    with translation.override("en"):
        yield


def ids(tree: Any, user: Any, among: list[Member]) -> set[int]:
    """The members of `among` the tree selects (the org fixture adds others)."""
    members = rule_members(check_rules(tree, user=user), user=user)
    return set(members.filter(pk__in=[m.pk for m in among]).values_list("pk", flat=True))


def cond(field: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value, **extra}


def both(*rules: Any) -> dict[str, Any]:
    return {"op": "and", "rules": list(rules)}


def either(*rules: Any) -> dict[str, Any]:
    return {"op": "or", "rules": list(rules)}


def negate(rule: Any) -> dict[str, Any]:
    return {"op": "not", "rules": [rule]}


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "path", "fragment"),
    [
        ([], "", "group or a condition"),
        ({"op": "xor", "rules": [cond("gender", "in", ["f"])]}, "", "Unknown group"),
        ({"op": "and", "rules": []}, "", "empty"),
        (both(cond("gender", "in", ["f"]), cond("agee", "between", [1, 2])), "rules[1]", "agee"),
        (
            both(either(cond("gender", "in", ["f"]), cond("city", "eq", ["上海"]))),
            "rules[0].rules[1]",
            "not “eq”",
        ),
        (both(negate(cond("gender", "in", ["x"]))), "rules[0].rules[0]", "Unknown value"),
        (
            {"op": "not", "rules": [cond("gender", "in", ["f"]), cond("city", "in", ["a"])]},
            "",
            "exactly one",
        ),
        (both(cond("age", "between", [40, 20])), "rules[0]", "starts after"),
        (both(cond("age", "between", [None, None])), "rules[0]", "at least one end"),
        (both(cond("member_since", "between", ["2024-02-30", None])), "rules[0]", "not a date"),
        (both(cond("order_count", "gte", 2, days=0)), "rules[0]", "between 1 and"),
        (both(cond("gender", "in", ["f"], days=30)), "rules[0]", "no time window"),
        (both(cond("tags", "any", ["x1"])), "rules[0]", "not an id"),
        (both(cond("order_amount", "gte", "lots")), "rules[0]", "not a number"),
        (both(cond("bought", "category", "  ")), "rules[0]", "Enter a value"),
        (both({"value": 1}), "rules[0]", "needs an “op”"),
    ],
)
def test_invalid_trees_name_the_bad_node(tree: Any, path: str, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(tree)
    assert caught.value.path == path
    assert fragment in caught.value.message


def test_depth_and_size_limits() -> None:
    deep: Any = cond("gender", "in", ["f"])
    for _ in range(7):
        deep = both(deep)
    with pytest.raises(RuleError, match="nest at most"):
        parse_rules(deep)
    with pytest.raises(RuleError, match="at most 50 conditions"):
        parse_rules(both(*[cond("gender", "in", ["f"])] * 51))
    # Three deep is fine.
    assert parse_rules(both(either(negate(both(cond("gender", "in", ["f"]))))))


def test_unknown_tag_store_or_tier_is_named(org: Any) -> None:
    tag = TagFactory()
    with pytest.raises(RuleError) as caught:
        check_rules(
            both(cond("gender", "in", ["f"]), either(cond("tags", "any", [tag.pk, tag.pk + 99]))),
            user=org.hq_admin,
        )
    assert caught.value.path == "rules[1].rules[0]"
    assert str(tag.pk + 99) in caught.value.message
    # A store manager cannot name another region's store.
    with pytest.raises(RuleError, match="Unknown store"):
        check_rules(both(cond("home_store", "in", [org.b1.pk])), user=org.store_manager_a1)
    assert check_rules(both(cond("home_store", "in", [org.a1.pk])), user=org.store_manager_a1)


# --- attribute conditions --------------------------------------------------------------------


@pytest.fixture
def people(org: Any) -> dict[str, Any]:
    now = timezone.now()
    today = timezone.localdate()
    return {
        "ana": MemberFactory(
            gender="f",
            city="上海",
            home_store=org.a1,
            birthday=years_ago(today, 30),  # turns 30 today
            member_since=now - timedelta(days=10),
            source_channel="tmall",
            lifecycle_stage=LifecycleStage.MEMBER,
        ),
        "bo": MemberFactory(
            gender="m",
            city="北京",
            home_store=org.b1,
            birthday=years_ago(today, 30) + timedelta(days=1),  # still 29
            member_since=now - timedelta(days=400),
            source_channel="pos",
            lifecycle_stage=LifecycleStage.REPEAT,
        ),
        "cy": MemberFactory(
            gender="u",
            city="上海",
            home_store=org.a2,
            birthday=None,
            member_since=None,
            source_channel="jd",
            lifecycle_stage=LifecycleStage.PROSPECT,
        ),
    }


def test_attribute_conditions(org: Any, people: dict[str, Member]) -> None:
    hq, everyone = org.hq_admin, list(people.values())
    ana, bo, cy = people["ana"].pk, people["bo"].pk, people["cy"].pk
    assert ids(both(cond("gender", "in", ["f"])), hq, everyone) == {ana}
    assert ids(both(cond("gender", "in", ["m", "u"])), hq, everyone) == {bo, cy}
    assert ids(both(cond("city", "in", ["上海"])), hq, everyone) == {ana, cy}
    assert ids(both(cond("age", "between", [30, 30])), hq, everyone) == {ana}
    assert ids(both(cond("age", "between", [None, 29])), hq, everyone) == {bo}
    assert ids(both(cond("age", "between", [20, 40])), hq, everyone) == {ana, bo}
    # No birthday: outside every age range, so inside its NOT.
    assert ids(negate(cond("age", "between", [20, 40])), hq, everyone) == {cy}
    assert ids(both(cond("home_store", "in", [org.a1.pk, org.a2.pk])), hq, everyone) == {ana, cy}
    assert ids(both(cond("lifecycle_stage", "in", ["repeat", "prospect"])), hq, everyone) == {
        bo,
        cy,
    }
    assert ids(both(cond("source_channel", "in", ["tmall", "jd"])), hq, everyone) == {ana, cy}
    assert ids(both(cond("member_since", "within_days", 30)), hq, everyone) == {ana}
    assert ids(both(cond("member_since", "before_days", 30)), hq, everyone) == {bo}
    today = timezone.localdate()
    assert ids(
        both(cond("member_since", "between", [str(today - timedelta(days=10)), str(today)])),
        hq,
        everyone,
    ) == {ana}


def test_not_and_nested_or(org: Any, people: dict[str, Member]) -> None:
    hq, everyone = org.hq_admin, list(people.values())
    ana, bo, cy = people["ana"].pk, people["bo"].pk, people["cy"].pk
    # (Shanghai AND NOT female) OR (male AND (Beijing OR Hangzhou))
    tree = either(
        both(cond("city", "in", ["上海"]), negate(cond("gender", "in", ["f"]))),
        both(
            cond("gender", "in", ["m"]),
            either(cond("city", "in", ["北京"]), cond("city", "in", ["杭州"])),
        ),
    )
    assert ids(tree, hq, everyone) == {bo, cy}
    assert ids(negate(tree), hq, everyone) == {ana}
    # Three deep: NOT (tmall OR (pos AND NOT repeat))
    deep = negate(
        either(
            cond("source_channel", "in", ["tmall"]),
            both(
                cond("source_channel", "in", ["pos"]),
                negate(cond("lifecycle_stage", "in", ["repeat"])),
            ),
        )
    )
    assert ids(deep, hq, everyone) == {bo, cy}


def test_counts_are_scoped_to_the_viewer(org: Any, people: dict[str, Member]) -> None:
    tree = check_rules(both(cond("city", "in", ["上海", "北京"])), user=org.hq_admin)
    everyone = {m.pk for m in people.values()}
    hq = set(rule_members(tree, user=org.hq_admin).values_list("pk", flat=True))
    manager = set(rule_members(tree, user=org.store_manager_a1).values_list("pk", flat=True))
    assert everyone <= hq
    assert people["ana"].pk in manager
    assert not manager & {people["bo"].pk, people["cy"].pk}  # other stores' members
    result = live_count(tree, user=org.store_manager_a1, sample_size=5)
    assert result.count == len(manager)
    assert {m.pk for m in result.sample} <= manager


# --- tags, tiers, points ------------------------------------------------------------------


def test_tag_any_all_none(org: Any, people: dict[str, Member]) -> None:
    hq, everyone = org.hq_admin, list(people.values())
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    mother, vip = TagFactory(name="宝妈"), TagFactory(name="高消费")
    member_tag_add(member=ana, tag=mother)
    member_tag_add(member=ana, tag=vip)
    member_tag_add(member=bo, tag=vip)
    assert ids(both(cond("tags", "any", [mother.pk, vip.pk])), hq, everyone) == {ana.pk, bo.pk}
    assert ids(both(cond("tags", "all", [mother.pk, vip.pk])), hq, everyone) == {ana.pk}
    assert ids(both(cond("tags", "none", [mother.pk, vip.pk])), hq, everyone) == {cy.pk}
    assert ids(both(cond("tags", "none", [mother.pk])), hq, everyone) == {bo.pk, cy.pk}


def test_tier_and_points(org: Any, people: dict[str, Member]) -> None:
    hq, everyone = org.hq_admin, list(people.values())
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    silver = Tier.objects.create(name="银卡", rank=1, threshold=1000, retain_threshold=500)
    gold = Tier.objects.create(name="金卡", rank=2, threshold=5000, retain_threshold=2500)
    MemberTier.objects.create(member=ana, tier=silver)
    # Bo earned silver but HQ set gold by hand until next month: gold counts.
    MemberTier.objects.create(
        member=bo,
        tier=silver,
        manual_tier=gold,
        manual_until=timezone.now() + timedelta(days=30),
        manual_reason="VIP",
    )
    MemberTier.objects.create(member=cy, tier=None)
    assert ids(both(cond("tier", "in", [silver.pk])), hq, everyone) == {ana.pk}
    assert ids(both(cond("tier", "in", [gold.pk])), hq, everyone) == {bo.pk}
    assert ids(both(cond("tier", "none")), hq, everyone) == {cy.pk}
    PointsAccount.objects.create(member=ana, kind="activity", balance=500)
    PointsAccount.objects.create(member=bo, kind="activity", balance=50)
    PointsAccount.objects.create(member=bo, kind="growth", balance=8000)
    assert ids(both(cond("activity_points", "gte", 100)), hq, everyone) == {ana.pk}
    # No account counts as zero points.
    assert ids(both(cond("activity_points", "lte", 50)), hq, everyone) == {bo.pk, cy.pk}
    assert ids(both(cond("growth_value", "between", [1000, None])), hq, everyone) == {bo.pk}


# --- orders ----------------------------------------------------------------------------------


ORDER_NUMBERS = iter(range(1, 100_000))


def _buy(member: Member, days_ago: int, amount: str, category: str = "") -> Any:
    return order_record(
        channel="pos",
        external_id=f"SEG{next(ORDER_NUMBERS):05d}",
        member=member,
        paid_at=timezone.now() - timedelta(days=days_ago),
        amount=Decimal(amount),
        lines=[
            LineInput(
                sku=f"SKU-{category or 'x'}",
                product_name="商品",
                quantity=1,
                unit_price=Decimal(amount),
                category=category,
            )
        ],
    )


def test_order_conditions(org: Any, people: dict[str, Member]) -> None:
    hq, everyone = org.hq_admin, list(people.values())
    ana, bo, cy = people["ana"], people["bo"], people["cy"]
    _buy(ana, 5, "300.00", "奶粉")
    _buy(ana, 40, "200.00", "奶粉")
    _buy(ana, 200, "1000.00", "纸尿裤")
    refunded = _buy(bo, 3, "500.00", "奶粉")
    order_refund(order=refunded, amount=Decimal("500.00"))  # fully refunded: not a purchase
    _buy(bo, 100, "80.00", "湿巾")
    # cy never bought anything.
    assert ids(both(cond("order_count", "gte", 2, days=90)), hq, everyone) == {ana.pk}
    assert ids(both(cond("order_count", "gte", 3)), hq, everyone) == {ana.pk}
    assert ids(both(cond("order_count", "lte", 0, days=90)), hq, everyone) == {bo.pk, cy.pk}
    assert ids(both(cond("order_amount", "between", [400, 600], days=90)), hq, everyone) == {ana.pk}
    assert ids(both(cond("order_amount", "lte", 100)), hq, everyone) == {bo.pk, cy.pk}
    assert ids(both(cond("last_purchase", "within_days", 30)), hq, everyone) == {ana.pk}
    assert ids(both(cond("last_purchase", "not_within_days", 30)), hq, everyone) == {
        bo.pk,
        cy.pk,
    }
    assert ids(both(cond("last_purchase", "never")), hq, everyone) == {cy.pk}
    # "Bought 奶粉 at least twice in 90 days" (bo's 奶粉 order was refunded).
    assert ids(both(cond("bought", "category", "奶粉", days=90, min_times=2)), hq, everyone) == {
        ana.pk
    }
    assert ids(both(cond("bought", "category", "奶粉", days=30)), hq, everyone) == {ana.pk}
    assert ids(both(cond("bought", "sku", "SKU-湿巾")), hq, everyone) == {bo.pk}
    assert ids(negate(cond("bought", "category", "奶粉")), hq, everyone) == {bo.pk, cy.pk}


def test_live_count_reports_a_timeout(
    org: Any, people: dict[str, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.models import BooleanField
    from django.db.models.expressions import RawSQL

    from members.segments import evaluate

    original = evaluate.rule_members

    def slow(tree: Any, **kwargs: Any) -> Any:
        # A real query that takes 0.2 s per member stands in for a tree too heavy to count.
        return original(tree, **kwargs).filter(
            RawSQL("pg_sleep(0.2) IS NOT NULL", [], output_field=BooleanField())
        )

    monkeypatch.setattr(evaluate, "rule_members", slow)
    tree = check_rules(both(cond("gender", "in", ["f"])), user=org.hq_admin)
    with pytest.raises(evaluate.SegmentTimeout, match="longer than 0.05 s"):
        live_count(tree, user=org.hq_admin, timeout_ms=50)
    # The connection is usable afterwards (the timed-out transaction was rolled back).
    assert Member.objects.filter(pk=people["ana"].pk).exists()
