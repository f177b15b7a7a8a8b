"""RFM on a small hand-computed data set: facts, scores by thresholds and by quintiles
(ties included), the eight classes, members with no orders, incremental recounts after
orders, refunds and merges, the window moving on, and RFM in segments."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import (
    Member,
    MemberRfm,
    PointsAccount,
    RfmDirty,
    RfmMethod,
    RfmMovement,
    RfmNewOrder,
    RfmSettings,
)
from members.segments.evaluate import check_rules, rule_members
from members.services.merge import member_merge
from members.services.orders import order_record, order_refund
from members.services.rfm import (
    class_sql,
    rfm_full_recompute,
    rfm_nightly,
    rfm_recount,
    rfm_refresh_cuts,
    score_sql,
)
from tests.conftest import Org
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db
ORDER_NUMBERS = iter(range(1, 1_000_000))


def buy(member: Member, days_ago: float, amount: str) -> Any:
    return order_record(
        channel="pos",
        external_id=f"RFM{next(ORDER_NUMBERS):06d}",
        member=member,
        paid_at=timezone.now() - timedelta(days=days_ago),
        amount=Decimal(amount),
    )


def thresholds() -> RfmSettings:
    settings = RfmSettings.current()
    settings.method = RfmMethod.THRESHOLDS
    settings.r_thresholds = [30, 90, 180, 365]
    settings.f_thresholds = [1, 2, 3, 5]
    settings.m_thresholds = [200, 500, 1000, 3000]
    settings.high_score = 3
    settings.window_days = 365
    settings.save()
    rfm_refresh_cuts()
    return RfmSettings.current()


def scores(member: Member) -> tuple[int, int, int, str]:
    from django.db import connection

    settings = RfmSettings.current()
    now = timezone.now()
    r_sql, f_sql, m_sql, params = score_sql(settings, now)
    klass, class_params = class_sql(settings, now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {r_sql}, {f_sql}, {m_sql}, {klass} FROM members_memberrfm r "
            "WHERE r.member_id = %s",
            [*params, *class_params, member.pk],
        )
        row = cursor.fetchone()
    assert row is not None
    return row


@pytest.fixture
def shoppers(org: Org) -> dict[str, Member]:
    people = {name: MemberFactory(home_store=org.a1) for name in "abcde"}
    buy(people["a"], 5, "300.00")
    buy(people["a"], 40, "900.00")
    for _ in range(4):
        buy(people["b"], 100, "100.00")
    buy(people["c"], 400, "800.00")  # outside the 365-day window
    # d never bought.
    refunded = buy(people["e"], 200, "5000.00")
    order_refund(order=refunded, amount=Decimal("5000.00"))
    buy(people["e"], 300, "50.00")
    return people


def test_facts_scores_and_classes_by_thresholds(shoppers: dict[str, Member]) -> None:
    thresholds()
    result = rfm_recount()
    # e's refund queued e for a recount from the orders; everyone else's new orders are
    # deltas: a's 2 and b's 4 count, c's (400 days ago) is outside the window.
    assert (result.members, result.buyers) == (1, 1)
    assert (result.new_orders, result.grown) == (7, 2)
    assert MemberRfm.objects.count() == 3  # d never bought
    assert not RfmDirty.objects.exists() and not RfmNewOrder.objects.exists()
    a = MemberRfm.objects.get(member=shoppers["a"])
    assert (a.frequency, a.monetary) == (2, Decimal("1200.00"))
    assert not MemberRfm.objects.filter(member__in=[shoppers["c"], shoppers["d"]]).exists()
    # a: 5 days → R5; 2 orders → F2 (more than 1 only); ¥1200 → M4; R,M high → 重要发展客户
    assert scores(shoppers["a"]) == (5, 2, 4, "HLH")
    # b: 100 days → R3; 4 orders → F4; ¥400 → M2 → 一般价值客户
    assert scores(shoppers["b"]) == (3, 4, 2, "HHL")
    # e: the refunded order does not count; 300 days → R2, F1, ¥50 → M1 → 一般挽留客户
    assert scores(shoppers["e"]) == (2, 1, 1, "LLL")


def test_quintile_cut_points_with_ties(org: Org) -> None:
    settings = RfmSettings.current()
    settings.method = RfmMethod.QUINTILE
    settings.save()
    people = [MemberFactory(home_store=org.a1) for _ in range(5)]
    for person, count in zip(people, [1, 1, 1, 2, 5], strict=True):
        for _ in range(count):
            buy(person, 10, "100.00")
    rfm_recount()
    settings = rfm_refresh_cuts()
    # Frequencies 1,1,1,2,5: the 20/40/60% quintiles are all 1, the 80% one is 2.
    assert settings.f_cuts == [1, 1, 1, 2]
    assert [scores(p)[1] for p in people] == [1, 1, 1, 4, 5]
    # Spend 100,100,100,200,500 → the same shape.
    assert [float(c) for c in settings.m_cuts] == [100, 100, 100, 200]
    assert [scores(p)[2] for p in people] == [1, 1, 1, 4, 5]


def test_incremental_recount_after_orders_refunds_and_merges(
    shoppers: dict[str, Member],
) -> None:
    thresholds()
    rfm_recount()
    d = shoppers["d"]
    order = buy(d, 1, "2500.00")
    assert RfmNewOrder.objects.filter(order_id=order.pk).exists()
    assert rfm_recount().grown == 1
    assert scores(d) == (5, 1, 4, "HLH")
    a = shoppers["a"]
    recent = a.orders.order_by("-paid_at").first()
    order_refund(order=recent, amount=Decimal("300.00"))
    rfm_recount()
    fact = MemberRfm.objects.get(member=a)
    assert (fact.frequency, fact.monetary) == (1, Decimal("900.00"))
    # Merging b into a: a's facts now hold both, b's row is gone.
    member_merge(keep=a, drop=shoppers["b"], actor=None)
    rfm_recount()
    fact = MemberRfm.objects.get(member=a)
    assert (fact.frequency, fact.monetary) == (5, Decimal("1300.00"))
    assert not MemberRfm.objects.filter(member=shoppers["b"]).exists()


def test_full_recompute_equals_the_incremental_facts(shoppers: dict[str, Member]) -> None:
    thresholds()
    rfm_recount()
    incremental = sorted(
        MemberRfm.objects.values_list("member_id", "frequency", "monetary", "last_order_at")
    )
    assert rfm_full_recompute() == 3
    full = sorted(
        MemberRfm.objects.values_list("member_id", "frequency", "monetary", "last_order_at")
    )
    assert full == incremental


def test_nightly_moves_the_window_and_records_movements(shoppers: dict[str, Member]) -> None:
    thresholds()
    rfm_recount()
    first = rfm_nightly()
    # Tonight: everyone gets a class for the first time ("" → class).
    assert first.moved == 3
    assert set(RfmMovement.objects.values_list("from_class", "to_class", "members")) == {
        ("", "HLH", 1),
        ("", "HHL", 1),
        ("", "LLL", 1),
    }
    # 100 days on the window starts 265 days ago: e's only counted order (300 days ago)
    # has left it; a's and b's have not.
    later = timezone.now() + timedelta(days=100)
    result = rfm_nightly(now=later)
    assert result.left_window == 1
    assert not MemberRfm.objects.filter(member=shoppers["e"]).exists()
    a = MemberRfm.objects.get(member=shoppers["a"])
    assert (a.frequency, a.monetary) == (2, Decimal("1200.00"))
    moves = set(
        RfmMovement.objects.filter(day=timezone.localdate(later)).values_list(
            "from_class", "to_class", "members"
        )
    )
    # e leaves its class; a (105 days: R3, F2, M4) stays 重要发展客户 (HLH);
    # b (200 days: R2, F4, M2) drops from 一般价值客户 to 一般保持客户 (LHL).
    assert moves == {("LLL", "", 1), ("HHL", "LHL", 1)}


def test_rfm_and_value_matrix_in_segments(org: Org, shoppers: dict[str, Member]) -> None:
    thresholds()
    rfm_recount()
    everyone = [m.pk for m in shoppers.values()]

    def ids(*rules: Any) -> set[str]:
        tree = check_rules({"op": "and", "rules": list(rules)}, user=org.hq_admin)
        found = set(
            rule_members(tree, user=org.hq_admin)
            .filter(pk__in=everyone)
            .values_list("pk", flat=True)
        )
        return {name for name, m in shoppers.items() if m.pk in found}

    assert ids({"field": "rfm_class", "operator": "in", "value": ["HLH", "LLL"]}) == {"a", "e"}
    assert ids({"field": "rfm_class", "operator": "none"}) == {"c", "d"}
    assert ids({"field": "rfm_r", "operator": "between", "value": [4, 5]}) == {"a"}
    assert ids({"field": "rfm_f", "operator": "between", "value": [3, None]}) == {"b"}
    assert ids(
        {"op": "not", "rules": [{"field": "rfm_m", "operator": "between", "value": [2, 5]}]}
    ) == {"c", "d", "e"}
    # Purchases earned growth already; set both balances outright for the matrix.
    balances = {"a": (800, 2500), "b": (600, 400), "c": (0, 9000), "d": (0, 0), "e": (10, 50)}
    for name, (activity, growth) in balances.items():
        for kind, balance in (("activity", activity), ("growth", growth)):
            PointsAccount.objects.update_or_create(
                member=shoppers[name], kind=kind, defaults={"balance": balance}
            )
    assert ids({"field": "value_matrix", "operator": "in", "value": ["core"]}) == {"a"}
    assert ids({"field": "value_matrix", "operator": "in", "value": ["fans"]}) == {"b"}
    assert ids({"field": "value_matrix", "operator": "in", "value": ["quiet_spenders"]}) == {"c"}
    assert ids({"field": "value_matrix", "operator": "in", "value": ["ordinary"]}) == {"d", "e"}


def test_rfm_page_scoped_and_settings_validated(
    client: Client, org: Org, shoppers: dict[str, Member]
) -> None:
    thresholds()
    rfm_recount()
    other = MemberFactory(home_store=org.b1)
    buy(other, 3, "99.00")
    rfm_recount()
    client.force_login(org.hq_operator)
    page = client.get("/hq/rfm/")
    assert page.status_code == 200
    classes = {row["code"]: row for row in page.context["classes"]}
    assert (classes["HLH"]["members"], classes["HLH"]["spend"]) == (1, Decimal("1200.00"))
    assert (classes["HLL"]["members"], classes["HLL"]["spend"]) == (1, Decimal("99.00"))
    assert classes["HHL"]["members"] == classes["LLL"]["members"] == 1
    assert page.context["buyers"] == 4
    client.force_login(org.store_manager_a1)
    mine = client.get("/hq/rfm/")
    assert mine.context["buyers"] == 3  # b1's buyer is not theirs
    assert mine.context["form"] is None
    refused = client.post("/hq/rfm/settings/", {"window_days": 30})
    assert refused.status_code == 302 and RfmSettings.current().window_days == 365
    client.force_login(org.hq_operator)
    bad = client.post(
        "/hq/rfm/settings/",
        {
            "window_days": 365,
            "method": "thresholds",
            "r_thresholds": "90, 30, 180, 365",
            "f_thresholds": "1,2,3",
            "m_thresholds": "a,b,c,d",
            "high_score": 9,
            "activity_high": 500,
            "growth_high": 2000,
        },
    )
    assert bad.status_code == 400
    assert set(bad.context["form"].errors) == {
        "r_thresholds",
        "f_thresholds",
        "m_thresholds",
        "high_score",
    }
    assert RfmSettings.current().r_thresholds == [30, 90, 180, 365]
    good = client.post(
        "/hq/rfm/settings/",
        {
            "window_days": 365,
            "method": "thresholds",
            "r_thresholds": "15, 60, 120, 300",
            "f_thresholds": "1，2，4，8",
            "m_thresholds": "100, 400, 800, 2000",
            "high_score": 4,
            "activity_high": 500,
            "growth_high": 2000,
        },
    )
    assert good.status_code == 302
    settings = RfmSettings.current()
    assert settings.r_cuts == [15, 60, 120, 300] and settings.f_cuts == [1, 2, 4, 8]
    assert settings.high_score == 4
