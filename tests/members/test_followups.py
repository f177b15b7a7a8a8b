"""The follow-up sweeps: welcome, birthday, repurchase, churn and RFM-drop tasks for guides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import Member, MemberRfm, Order, OrderLine
from members.models.guides import (
    AssignmentReason,
    FollowUpTask,
    GuideAssignment,
    RepurchaseCycle,
    TaskKind,
    TaskStatus,
)
from members.services.followups import CHURN_FACTOR, followups_daily, followups_welcome
from scrm.org.scoping import Role
from tests.conftest import Org
from tests.members.factories import MemberFactory, OrderFactory
from tests.org.factories import StaffFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 6, 10)
NOTHING = {"birthday": 0, "repurchase": 0, "churn": 0, "rfm_drop": 0}


def local(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def tasks(member: Member) -> list[tuple[str, int, date, str, dict[str, object]]]:
    return [
        (t.kind, t.guide_id, t.due_on, t.source_key, t.facts)
        for t in FollowUpTask.objects.filter(member=member).order_by("source_key")
    ]


def buyer(
    *, guide: object, last: datetime, interval_days: int, orders: int = 2, **extra: object
) -> Member:
    """A repeat customer whose purchases were `interval_days` apart on average."""
    return MemberFactory(
        guide=guide,
        order_count=orders,
        first_order_at=last - timedelta(days=interval_days * (orders - 1)),
        last_order_at=last,
        **extra,
    )


def last_order(member: Member, *lines: tuple[str, str, str]) -> Order:
    """The member's last order (paid at member.last_order_at) with (sku, category, name) lines."""
    order = OrderFactory(member=member, paid_at=member.last_order_at)
    for sku, category, name in lines:
        OrderLine.objects.create(
            order=order,
            sku=sku,
            category=category,
            product_name=name,
            quantity=1,
            unit_price=Decimal("99.00"),
            amount=Decimal("99.00"),
        )
    return order


def rfm(member: Member, *, before: str, after: str, since: date) -> MemberRfm:
    return MemberRfm.objects.create(
        member=member,
        frequency=3,
        monetary=Decimal("900.00"),
        last_order_at=local(TODAY - timedelta(days=40)),
        first_in_window=local(TODAY - timedelta(days=200)),
        rfm_class=after,
        previous_class=before,
        class_since=since,
    )


def due_for_everything(guide: object, **extra: object) -> Member:
    """Birthday today, a repurchase due 7 days ago, a churn warning due today, an RFM drop
    (a week is the shortest usual interval, and the only one that has both in the window)."""
    member = buyer(
        guide=guide,
        last=local(TODAY - timedelta(days=14)),
        interval_days=7,
        birthday=date(1990, TODAY.month, TODAY.day),
        **extra,
    )
    rfm(member, before="HHH", after="LHH", since=TODAY)
    return member


# --- Welcome -----------------------------------------------------------------------------------


NOW = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def assign(member: Member, *, to: object, reason: str, at: datetime) -> GuideAssignment:
    return GuideAssignment.objects.create(member=member, to_guide=to, reason=reason, created_at=at)


@pytest.mark.parametrize(
    "reason",
    [
        AssignmentReason.QR_CODE,
        AssignmentReason.PURCHASE,
        AssignmentReason.MANAGER,
        AssignmentReason.ROUND_ROBIN,
    ],
)
def test_welcome_for_a_new_customer_is_due_a_local_day_later(org: Org, reason: str) -> None:
    member = org.member_of_guide_a1
    # 01:00 on 10 June in Shanghai (still 9 June in UTC): due 11 June, local.
    at = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)
    assignment = assign(member, to=org.guide_a1, reason=reason, at=at)

    assert followups_welcome(now=NOW) == 1

    assert tasks(member) == [
        (
            "welcome",
            org.guide_a1.pk,
            date(2026, 6, 11),
            f"welcome:{assignment.pk}",
            {"assigned_at": "2026-06-09T17:00:00+00:00"},
        )
    ]
    task = FollowUpTask.objects.get(member=member)
    assert (task.title, task.status, task.created_at) == ("", TaskStatus.OPEN, NOW)


@pytest.mark.parametrize(
    "reason",
    [
        AssignmentReason.TRANSFER,
        AssignmentReason.DEPARTURE,
        AssignmentReason.POOL,
        AssignmentReason.IMPORT,
    ],
)
def test_no_welcome_for_transfers_handovers_the_pool_or_imports(org: Org, reason: str) -> None:
    assign(org.member_of_guide_a1, to=org.guide_a1, reason=reason, at=NOW - timedelta(hours=1))

    assert followups_welcome(now=NOW) == 0
    assert FollowUpTask.objects.count() == 0


def test_welcome_only_within_24_hours_and_for_the_current_guide(org: Org) -> None:
    member = org.member_of_guide_a1
    assign(member, to=org.guide_a1, reason="qr_code", at=NOW - timedelta(hours=24))
    assign(member, to=org.guide_a1, reason="qr_code", at=NOW + timedelta(seconds=1))
    # Assigned to another guide since then: that assignment is stale.
    assign(member, to=org.guide_a1_other, reason="manager", at=NOW - timedelta(hours=2))
    fresh = assign(
        member,
        to=org.guide_a1,
        reason="manager",
        at=NOW - timedelta(hours=24) + timedelta(seconds=1),
    )

    assert followups_welcome(now=NOW) == 1
    assert [t[3] for t in tasks(member)] == [f"welcome:{fresh.pk}"]


def test_welcome_twice_creates_nothing_new(org: Org) -> None:
    assign(org.member_of_guide_a1, to=org.guide_a1, reason="qr_code", at=NOW - timedelta(hours=3))

    assert followups_welcome(now=NOW) == 1
    assert followups_welcome(now=NOW + timedelta(minutes=10)) == 0
    assert FollowUpTask.objects.count() == 1


def test_no_welcome_without_an_active_guide_or_when_merged(org: Org) -> None:
    inactive = StaffFactory(role=Role.GUIDE, is_active=False)
    keep = MemberFactory(guide=org.guide_a1)
    members = [
        MemberFactory(guide=inactive),
        MemberFactory(guide=org.guide_a1, merged_into=keep),
    ]
    for member in members:
        assign(member, to=member.guide, reason="qr_code", at=NOW - timedelta(hours=1))
    assign(org.member_a1_unassigned, to=None, reason="pool", at=NOW - timedelta(hours=1))

    assert followups_welcome(now=NOW) == 0
    assert FollowUpTask.objects.count() == 0


# --- Eligibility and idempotency of the daily sweep ------------------------------------------


def test_daily_sweep_creates_each_kind_for_the_current_guide(org: Org) -> None:
    member = due_for_everything(org.guide_a1)
    member.guide = org.guide_a1_other  # the guide changed: tasks go to the current one
    member.save(update_fields=["guide"])

    assert followups_daily(today=TODAY) == {
        "birthday": 1,
        "repurchase": 1,
        "churn": 1,
        "rfm_drop": 1,
    }

    guide = org.guide_a1_other.pk
    assert tasks(member) == [
        ("birthday", guide, TODAY, f"birthday:2026:{member.pk}", {"birthday": "1990-06-10"}),
        (
            "churn",
            guide,
            TODAY,
            f"churn:{member.pk}:20260527",
            {"last_order_at": "2026-05-27", "days": 7, "since": 14},
        ),
        (
            "repurchase",
            guide,
            date(2026, 6, 3),
            f"repurchase:{member.pk}:20260527",
            {"last_order_at": "2026-05-27", "days": 7, "basis": "interval", "product": ""},
        ),
        ("churn", guide, TODAY, f"rfmdrop:{member.pk}:20260610", {"from": "HHH", "to": "LHH"}),
    ]
    assert set(FollowUpTask.objects.values_list("title", "status")) == {("", TaskStatus.OPEN)}


def test_daily_sweep_twice_creates_nothing_new(org: Org) -> None:
    due_for_everything(org.guide_a1)
    first = followups_daily(today=TODAY)

    assert followups_daily(today=TODAY) == NOTHING
    assert FollowUpTask.objects.count() == sum(first.values()) == 4


def test_no_tasks_without_a_guide_with_an_inactive_guide_or_when_merged(org: Org) -> None:
    inactive = StaffFactory(role=Role.GUIDE, is_active=False)
    due_for_everything(None)
    due_for_everything(inactive)
    keep = MemberFactory(guide=org.guide_a1)
    due_for_everything(org.guide_a1, merged_into=keep)

    assert followups_daily(today=TODAY) == NOTHING
    assert FollowUpTask.objects.count() == 0


# --- Birthdays ---------------------------------------------------------------------------------


def test_birthdays_from_today_to_three_days_ahead(org: Org) -> None:
    guide = org.guide_a1
    born = {offset: date(1988, 6, 10 + offset) for offset in range(5)}
    members = {offset: MemberFactory(guide=guide, birthday=day) for offset, day in born.items()}

    assert followups_daily(today=TODAY)["birthday"] == 4

    for offset in range(4):
        member = members[offset]
        assert tasks(member) == [
            (
                "birthday",
                guide.pk,
                date(2026, 6, 10 + offset),
                f"birthday:2026:{member.pk}",
                {"birthday": born[offset].isoformat()},
            )
        ]
    assert tasks(members[4]) == []  # four days away: not yet


def test_february_29_birthdays_fall_on_the_28th_in_other_years(org: Org) -> None:
    member = MemberFactory(guide=org.guide_a1, birthday=date(1992, 2, 29))

    assert followups_daily(today=date(2027, 2, 25))["birthday"] == 1

    assert tasks(member) == [
        (
            "birthday",
            org.guide_a1.pk,
            date(2027, 2, 28),
            f"birthday:2027:{member.pk}",
            {"birthday": "1992-02-29"},
        )
    ]


def test_february_29_birthdays_in_a_leap_year(org: Org) -> None:
    member = MemberFactory(guide=org.guide_a1, birthday=date(1992, 2, 29))
    feb_28 = MemberFactory(guide=org.guide_a1, birthday=date(1990, 2, 28))

    assert followups_daily(today=date(2028, 2, 29))["birthday"] == 1

    assert [(t[2], t[3]) for t in tasks(member)] == [
        (date(2028, 2, 29), f"birthday:2028:{member.pk}")
    ]
    assert tasks(feb_28) == []


def test_birthdays_across_the_new_year_use_next_years_date(org: Org) -> None:
    december = MemberFactory(guide=org.guide_a1, birthday=date(1985, 12, 31))
    january = MemberFactory(guide=org.guide_a1, birthday=date(1995, 1, 2))
    too_far = MemberFactory(guide=org.guide_a1, birthday=date(1995, 1, 3))

    assert followups_daily(today=date(2026, 12, 30))["birthday"] == 2

    assert [(t[2], t[3]) for t in tasks(december)] == [
        (date(2026, 12, 31), f"birthday:2026:{december.pk}")
    ]
    assert [(t[2], t[3]) for t in tasks(january)] == [
        (date(2027, 1, 2), f"birthday:2027:{january.pk}")
    ]
    assert tasks(too_far) == []
    # The next morning adds only 3 January: the others have theirs already.
    assert followups_daily(today=date(2026, 12, 31))["birthday"] == 1
    assert [(t[2], t[3]) for t in tasks(too_far)] == [
        (date(2027, 1, 3), f"birthday:2027:{too_far.pk}")
    ]
    assert FollowUpTask.objects.count() == 3


# --- Repurchase --------------------------------------------------------------------------------


def test_product_cycle_beats_the_customers_own_interval(org: Org) -> None:
    RepurchaseCycle.objects.create(sku="SKU-CREAM", days=30)
    # Bought just after midnight in Shanghai (still 12 May in UTC): the local day counts.
    last = local(date(2026, 5, 13), hour=0, minute=30)
    member = buyer(guide=org.guide_a1, last=last, interval_days=29)
    last_order(member, ("SKU-CREAM", "面霜", "玻尿酸面霜 50ml"))

    assert followups_daily(today=TODAY)["repurchase"] == 1

    assert tasks(member) == [
        (
            "repurchase",
            org.guide_a1.pk,
            date(2026, 6, 12),
            f"repurchase:{member.pk}:20260513",
            {
                "last_order_at": "2026-05-13",
                "days": 30,
                "basis": "product",
                "product": "玻尿酸面霜 50ml",
            },
        )
    ]


def test_a_skus_cycle_beats_its_categorys(org: Org) -> None:
    RepurchaseCycle.objects.create(sku="SKU-CREAM", days=30)
    RepurchaseCycle.objects.create(category="面霜", days=28)
    last = local(date(2026, 5, 12))
    member = MemberFactory(
        guide=org.guide_a1, order_count=1, first_order_at=last, last_order_at=last
    )
    last_order(member, ("SKU-CREAM", "面霜", "玻尿酸面霜 50ml"))

    followups_daily(today=TODAY)

    assert [(t[2], t[4]["days"], t[4]["product"]) for t in tasks(member)] == [
        (date(2026, 6, 11), 30, "玻尿酸面霜 50ml")
    ]


def test_the_shortest_cycle_among_the_last_orders_lines(org: Org) -> None:
    RepurchaseCycle.objects.create(sku="SKU-CREAM", days=30)
    RepurchaseCycle.objects.create(category="精华", days=27)
    member = MemberFactory(
        guide=org.guide_a1, order_count=1, last_order_at=local(date(2026, 5, 12))
    )
    last_order(
        member,
        ("SKU-CREAM", "面霜", "玻尿酸面霜 50ml"),
        ("SKU-SERUM", "精华", "修护精华 30ml"),
        ("SKU-BAG", "", "购物袋"),
    )
    # An older order with a shorter cycle does not count: only the last order does.
    RepurchaseCycle.objects.create(sku="SKU-MASK", days=7)
    older = OrderFactory(member=member, paid_at=local(date(2026, 5, 1)))
    OrderLine.objects.create(
        order=older,
        sku="SKU-MASK",
        product_name="面膜",
        quantity=1,
        unit_price=Decimal("10"),
        amount=Decimal("10"),
    )

    followups_daily(today=TODAY)

    assert [t[4] for t in tasks(member)] == [
        {"last_order_at": "2026-05-12", "days": 27, "basis": "product", "product": "修护精华 30ml"}
    ]
    assert tasks(member)[0][2] == date(2026, 6, 8)


def test_own_interval_is_rounded_to_whole_days(org: Org) -> None:
    # 61 days over two intervals: 30.5 → 31 days, due 10 June.
    last = local(date(2026, 5, 10))
    member = MemberFactory(
        guide=org.guide_a1,
        order_count=3,
        first_order_at=last - timedelta(days=61),
        last_order_at=last,
    )

    followups_daily(today=TODAY)

    assert tasks(member)[0][1:] == (
        org.guide_a1.pk,
        TODAY,
        f"repurchase:{member.pk}:20260510",
        {"last_order_at": "2026-05-10", "days": 31, "basis": "interval", "product": ""},
    )


def test_own_interval_is_at_least_a_week(org: Org) -> None:
    last = local(TODAY, hour=9)
    member = MemberFactory(
        guide=org.guide_a1,
        order_count=2,
        first_order_at=last - timedelta(hours=2),
        last_order_at=last,
    )

    assert followups_daily(today=TODAY)["repurchase"] == 0  # due in a week: not yet
    assert followups_daily(today=TODAY + timedelta(days=5))["repurchase"] == 1
    assert [(t[2], t[4]["days"]) for t in tasks(member)] == [(date(2026, 6, 17), 7)]


def test_no_interval_reminder_when_the_last_order_has_a_product_cycle(org: Org) -> None:
    # The product's cycle falls due outside the window; the own interval would be inside.
    RepurchaseCycle.objects.create(category="面霜", days=90)
    member = buyer(guide=org.guide_a1, last=local(date(2026, 5, 11)), interval_days=30)
    last_order(member, ("SKU-CREAM", "面霜", "玻尿酸面霜 50ml"))

    assert followups_daily(today=TODAY)["repurchase"] == 0
    assert tasks(member) == []


@pytest.mark.parametrize(
    ("days_ago", "created"),
    [(38, False), (37, True), (30, True), (27, True), (26, False)],
)
def test_repurchase_window_from_a_week_back_to_three_days_ahead(
    org: Org, days_ago: int, created: bool
) -> None:
    # Own interval 30 days: due 30 days after the last purchase.
    member = buyer(
        guide=org.guide_a1, last=local(TODAY - timedelta(days=days_ago)), interval_days=30
    )

    followups_daily(today=TODAY)

    expected_due = TODAY - timedelta(days=days_ago) + timedelta(days=30)
    assert [t[2] for t in tasks(member) if t[0] == "repurchase"] == (
        [expected_due] if created else []
    )


def test_repurchase_product_cycle_window_edges(org: Org) -> None:
    RepurchaseCycle.objects.create(sku="SKU-CREAM", days=20)
    members = {}
    for days_ago in (28, 27, 17, 16):
        member = MemberFactory(
            guide=org.guide_a1,
            order_count=1,
            last_order_at=local(TODAY - timedelta(days=days_ago), hour=23, minute=50),
        )
        last_order(member, ("SKU-CREAM", "面霜", "面霜"))
        members[days_ago] = member

    assert followups_daily(today=TODAY)["repurchase"] == 2

    assert [t[2] for t in tasks(members[27])] == [TODAY - timedelta(days=7)]
    assert [t[2] for t in tasks(members[17])] == [TODAY + timedelta(days=3)]
    assert tasks(members[28]) == tasks(members[16]) == []


def test_a_new_purchase_makes_a_new_reminder(org: Org) -> None:
    member = buyer(guide=org.guide_a1, last=local(date(2026, 5, 11)), interval_days=30)
    followups_daily(today=TODAY)

    member.order_count = 3
    member.last_order_at = local(date(2026, 6, 11))
    member.save(update_fields=["order_count", "last_order_at"])
    # Interval now (31 + 30) / 2 = 30.5 → 31 days: due 12 July.
    assert followups_daily(today=date(2026, 7, 10))["repurchase"] == 1

    assert [t[3] for t in tasks(member) if t[0] == "repurchase"] == [
        f"repurchase:{member.pk}:20260511",
        f"repurchase:{member.pk}:20260611",
    ]


# --- Churn -------------------------------------------------------------------------------------


def test_churn_factor_is_two() -> None:
    assert CHURN_FACTOR == 2


@pytest.mark.parametrize(
    ("days_ago", "created"),
    [(19, False), (20, True), (24, True), (27, True), (28, False)],
)
def test_churn_warning_within_a_week_of_passing_twice_the_interval(
    org: Org, days_ago: int, created: bool
) -> None:
    # Usual interval 10 days: the warning falls due 20 days after the last purchase.
    last_day = TODAY - timedelta(days=days_ago)
    member = buyer(guide=org.guide_a1, last=local(last_day), interval_days=10, orders=4)

    followups_daily(today=TODAY)

    churn = [t for t in tasks(member) if t[0] == "churn"]
    if not created:
        assert churn == []
        return
    assert churn == [
        (
            "churn",
            org.guide_a1.pk,
            TODAY,
            f"churn:{member.pk}:{last_day:%Y%m%d}",
            {"last_order_at": last_day.isoformat(), "days": 10, "since": days_ago},
        )
    ]


def test_no_churn_warning_for_one_time_buyers(org: Org) -> None:
    last = local(TODAY - timedelta(days=60))
    member = MemberFactory(
        guide=org.guide_a1, order_count=1, first_order_at=last, last_order_at=last
    )

    assert followups_daily(today=TODAY) == NOTHING
    assert tasks(member) == []


# --- RFM drops ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "since_days", "created"),
    [
        ("HHH", "LHH", 0, True),
        ("HLH", "LLL", 2, True),
        ("HHH", "LLL", 3, False),  # older than two days: reported already (or too late)
        ("LHH", "HHH", 0, False),  # a rise
        ("HLH", "LHH", 0, False),  # as many high scores as before
        ("", "LLL", 0, False),  # first class
    ],
)
def test_rfm_drop_warns_the_guide(
    org: Org, before: str, after: str, since_days: int, created: bool
) -> None:
    member = org.member_of_guide_a1
    since = TODAY - timedelta(days=since_days)
    rfm(member, before=before, after=after, since=since)

    assert followups_daily(today=TODAY)["rfm_drop"] == int(created)

    assert tasks(member) == (
        [
            (
                TaskKind.CHURN,
                org.guide_a1.pk,
                TODAY,
                f"rfmdrop:{member.pk}:{since:%Y%m%d}",
                {"from": before, "to": after},
            )
        ]
        if created
        else []
    )
