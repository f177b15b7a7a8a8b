"""Guides and their customers: assignment, transfers (在职/离职继承) with WeCom's limit,
the pool's round-robin, notes, tasks, attribution and the figures managers see."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import (
    AssignmentReason,
    FollowUpTask,
    GuideAssignment,
    Member,
    Order,
    ServiceNote,
    TaskKind,
    TaskOutcome,
    TaskStatus,
)
from members.selectors.guides import (
    CustomerFilters,
    guide_figures,
    guide_leaderboard,
    my_customers,
)
from members.services.errors import MemberError
from members.services.guides import (
    customers_to_pool,
    customers_transfer,
    guide_assign,
    guide_depart,
    note_add,
    pool_distribute,
    task_complete,
    tasks_create_for_members,
)
from members.services.orders import order_record
from members.services.tags import member_tag_add
from scrm.org.models import Staff
from scrm.org.scoping import Role
from tests.members.factories import MemberFactory, TagFactory
from tests.org.factories import StaffFactory

pytestmark = pytest.mark.django_db


def snapshot() -> tuple:
    return (
        sorted(Member.objects.values_list("pk", "guide_id", "home_store_id")),
        GuideAssignment.objects.count(),
        sorted(FollowUpTask.objects.values_list("pk", "guide_id", "status")),
        sorted(Staff.objects.values_list("pk", "is_active")),
    )


def make_task(member, guide, **kw) -> FollowUpTask:
    return FollowUpTask.objects.create(
        member=member,
        guide=guide,
        kind=kw.pop("kind", TaskKind.HQ),
        title=kw.pop("title", "回访"),
        due_on=kw.pop("due_on", timezone.localdate()),
        **kw,
    )


# --- assignment ---------------------------------------------------------------------------


def test_purchase_with_guide_code_assigns_unassigned_buyer_and_credits_the_sale(org):
    member = org.member_a1_unassigned
    order = order_record(
        channel="pos",
        external_id="POS-1",
        member=member,
        paid_at=timezone.now() - timedelta(minutes=5),
        amount="299.00",
        store=org.a1,
        guide=org.guide_a1_other,
    )
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk
    assert order.guide_id == org.guide_a1_other.pk
    (row,) = GuideAssignment.objects.filter(member=member)
    assert (row.from_guide_id, row.to_guide_id, row.reason, row.store_id) == (
        None,
        org.guide_a1_other.pk,
        AssignmentReason.PURCHASE,
        org.a1.pk,
    )


def test_purchase_with_another_guides_code_keeps_the_guide_in_charge(org):
    member = org.member_of_guide_a1
    order = order_record(
        channel="pos",
        external_id="POS-2",
        member=member,
        paid_at=timezone.now(),
        amount="10",
        guide=org.guide_a1_other,
    )
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1.pk
    assert order.guide_id == org.guide_a1_other.pk  # the sale is credited to who made it
    assert not GuideAssignment.objects.filter(member=member).exists()


def test_purchase_at_another_stores_guide_credits_but_does_not_assign(org):
    member = org.member_a1_unassigned
    order = order_record(
        channel="pos",
        external_id="POS-3",
        member=member,
        paid_at=timezone.now(),
        amount="10",
        guide=org.guide_b1,
    )
    member.refresh_from_db()
    assert member.guide_id is None
    assert order.guide_id == org.guide_b1.pk


def test_guide_assign_gives_a_storeless_member_the_guides_store(org):
    member = MemberFactory(home_store=None, guide=None)
    row = guide_assign(member=member, guide=org.guide_b1, reason=AssignmentReason.QR_CODE)
    member.refresh_from_db()
    assert (member.guide_id, member.home_store_id) == (org.guide_b1.pk, org.b1.pk)
    assert row is not None and row.reason == AssignmentReason.QR_CODE


def test_guide_assign_refuses_a_non_guide_and_changes_nothing(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        guide_assign(
            member=org.member_a1_unassigned,
            guide=org.store_manager_a1,
            reason=AssignmentReason.QR_CODE,
        )
    assert exc.value.code == "not_a_guide"
    assert snapshot() == before


def test_attribution_is_kept_after_a_transfer(org):
    member = org.member_of_guide_a1
    order = order_record(
        channel="pos", external_id="P9", member=member, paid_at=timezone.now(), amount="88"
    )
    assert order.guide_id == org.guide_a1.pk
    customers_transfer(
        member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.store_manager_a1
    )
    order.refresh_from_db()
    assert order.guide_id == org.guide_a1.pk
    later = order_record(
        channel="pos", external_id="P10", member=member, paid_at=timezone.now(), amount="12"
    )
    assert later.guide_id == org.guide_a1_other.pk


# --- 在职继承 ---------------------------------------------------------------------------


def test_transfer_moves_customer_history_stays_and_open_tasks_follow(org):
    member = org.member_of_guide_a1
    note = note_add(member=member, author=org.guide_a1, body="喜欢保湿产品")
    task = make_task(member, org.guide_a1)
    done = make_task(
        member,
        org.guide_a1,
        status=TaskStatus.DONE,
        outcome=TaskOutcome.REACHED,
        done_at=timezone.now(),
    )
    result = customers_transfer(
        member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.store_manager_a1, note="调岗"
    )
    assert result.moved == 1
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk
    (row,) = GuideAssignment.objects.filter(member=member)
    assert (row.from_guide_id, row.to_guide_id, row.reason, row.actor_id, row.note) == (
        org.guide_a1.pk,
        org.guide_a1_other.pk,
        AssignmentReason.TRANSFER,
        org.store_manager_a1.pk,
        "调岗",
    )
    task.refresh_from_db()
    done.refresh_from_db()
    assert task.guide_id == org.guide_a1_other.pk
    assert done.guide_id == org.guide_a1.pk  # done work stays with who did it
    assert ServiceNote.objects.get(pk=note.pk).member_id == member.pk
    visible = my_customers(user=org.guide_a1_other, filters=CustomerFilters())
    assert member.pk in set(visible.values_list("pk", flat=True))


def test_third_transfer_within_90_days_is_refused_and_changes_nothing(org):
    member = org.member_of_guide_a1
    now = timezone.now()
    customers_transfer(
        member_ids=[member.pk],
        to_guide=org.guide_a1_other,
        actor=org.store_manager_a1,
        now=now - timedelta(days=60),
    )
    customers_transfer(
        member_ids=[member.pk],
        to_guide=org.guide_a1,
        actor=org.store_manager_a1,
        now=now - timedelta(days=10),
    )
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.store_manager_a1, now=now
        )
    assert exc.value.code == "transfer_limit"
    assert "90" in str(exc.value.message)
    assert snapshot() == before
    # Once the first transfer is more than 90 days old, a new one is allowed.
    customers_transfer(
        member_ids=[member.pk],
        to_guide=org.guide_a1_other,
        actor=org.store_manager_a1,
        now=now + timedelta(days=31),
    )
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk


def test_transfer_to_a_guide_of_another_store_is_refused(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[org.member_of_guide_a1.pk], to_guide=org.guide_b1, actor=org.hq_admin
        )
    assert exc.value.code == "guide_other_store"
    assert snapshot() == before


def test_a_store_manager_cannot_see_another_stores_guide_or_customer(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[org.member_b1.pk], to_guide=org.guide_a1, actor=org.store_manager_a1
        )
    assert exc.value.code == "customers_not_found"
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[org.member_of_guide_a1.pk],
            to_guide=org.guide_b1,
            actor=org.store_manager_a1,
        )
    assert exc.value.code in {"guide_not_found", "guide_other_store"}
    assert snapshot() == before


def test_a_guide_cannot_transfer_customers(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[org.member_of_guide_a1.pk],
            to_guide=org.guide_a1_other,
            actor=org.guide_a1,
        )
    assert exc.value.code == "not_allowed"
    assert snapshot() == before


def test_a_batch_with_one_bad_member_moves_none(org):
    other = MemberFactory(home_store=org.a1, guide=org.guide_a1)
    now = timezone.now()
    for target in (org.guide_a1_other, org.guide_a1):
        customers_transfer(member_ids=[other.pk], to_guide=target, actor=org.hq_admin, now=now)
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(
            member_ids=[org.member_of_guide_a1.pk, other.pk],
            to_guide=org.guide_a1_other,
            actor=org.hq_admin,
        )
    assert exc.value.code == "transfer_limit"
    assert snapshot() == before


def test_assigning_from_the_pool_is_not_a_transfer(org):
    member = org.member_a1_unassigned
    customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1, actor=org.store_manager_a1)
    (row,) = GuideAssignment.objects.filter(member=member)
    assert row.reason == AssignmentReason.MANAGER


def test_back_to_pool_cancels_open_tasks(org):
    member = org.member_of_guide_a1
    task = make_task(member, org.guide_a1)
    assert customers_to_pool(member_ids=[member.pk], actor=org.store_manager_a1) == 1
    member.refresh_from_db()
    task.refresh_from_db()
    assert member.guide_id is None
    assert task.status == TaskStatus.CANCELLED


# --- 离职继承 ---------------------------------------------------------------------------


def test_departure_spreads_customers_evenly_and_switches_off_the_account(org):
    leaving = StaffFactory(role=Role.GUIDE, stores=[org.a1])
    third = Staff.objects.get(pk=StaffFactory(role=Role.GUIDE, stores=[org.a1]).pk)
    customers = [MemberFactory(home_store=org.a1, guide=leaving) for _ in range(5)]
    task = make_task(customers[0], leaving)
    result = guide_depart(
        guide=leaving, actor=org.store_manager_a1, to_guides=[org.guide_a1_other, third]
    )
    assert result.moved == 5 and result.pooled == 0
    counts = {
        g: Member.objects.filter(pk__in=[c.pk for c in customers], guide=g).count()
        for g in (org.guide_a1_other, third)
    }
    assert sorted(counts.values()) == [2, 3]
    leaving.refresh_from_db()
    assert leaving.is_active is False
    reasons = set(
        GuideAssignment.objects.filter(member__in=customers).values_list("reason", flat=True)
    )
    assert reasons == {AssignmentReason.DEPARTURE}
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert task.guide_id == Member.objects.get(pk=customers[0].pk).guide_id


def test_departure_is_not_limited_by_the_transfer_rule(org):
    member = org.member_of_guide_a1
    leaving = org.guide_a1
    now = timezone.now()
    customers_transfer(
        member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.hq_admin, now=now
    )
    customers_transfer(member_ids=[member.pk], to_guide=leaving, actor=org.hq_admin, now=now)
    guide_depart(guide=leaving, actor=org.hq_admin, to_guides=[org.guide_a1_other])
    member.refresh_from_db()
    assert member.guide_id == org.guide_a1_other.pk


def test_departure_to_pool(org):
    leaving = org.guide_a1
    member = org.member_of_guide_a1
    result = guide_depart(guide=leaving, actor=org.store_manager_a1)
    member.refresh_from_db()
    assert result.pooled == 1
    assert member.guide_id is None
    assert GuideAssignment.objects.get(member=member).reason == AssignmentReason.POOL


def test_departure_to_another_stores_guide_is_refused_and_changes_nothing(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        guide_depart(guide=org.guide_a1, actor=org.hq_admin, to_guides=[org.guide_b1])
    assert exc.value.code == "no_guide_for_store"
    assert snapshot() == before


def test_departure_of_another_stores_guide_is_not_found(org):
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        guide_depart(guide=org.guide_b1, actor=org.store_manager_a1)
    assert exc.value.code == "guide_not_found"
    assert snapshot() == before


# --- round-robin ------------------------------------------------------------------------


def test_pool_round_robin_evens_out_the_load(org):
    # guide_a1 has 1 customer, guide_a1_other 1; add 5 unassigned (plus the fixture's one).
    extra = [MemberFactory(home_store=org.a1, guide=None) for _ in range(5)]
    counts = pool_distribute(store=org.a1, actor=org.store_manager_a1)
    assert sum(counts.values()) == 6
    loads = sorted(
        Member.objects.filter(guide__in=[org.guide_a1, org.guide_a1_other])
        .values_list("guide_id")
        .annotate()
        .values_list("guide_id", flat=True)
    )
    per_guide = {g: loads.count(g) for g in set(loads)}
    assert sorted(per_guide.values()) == [4, 4]
    assert not Member.objects.filter(home_store=org.a1, guide__isnull=True).exists()
    assert set(
        GuideAssignment.objects.filter(member__in=extra).values_list("reason", flat=True)
    ) == {AssignmentReason.ROUND_ROBIN}


def test_pool_of_a_store_without_guides_is_refused(org):
    MemberFactory(home_store=org.a2, guide=None)
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        pool_distribute(store=org.a2, actor=org.region_manager_a)
    assert exc.value.code == "no_guides"
    assert snapshot() == before


# --- notes and tasks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ("", "note", "note_empty"),
        ("   ", "note", "note_empty"),
        ("x" * 1001, "note", "note_too_long"),
        ("ok", "fax", "note_kind"),
    ],
)
def test_bad_notes_are_refused(org, body, kind, code):
    with pytest.raises(MemberError) as exc:
        note_add(member=org.member_of_guide_a1, author=org.guide_a1, body=body, kind=kind)
    assert exc.value.code == code
    assert ServiceNote.objects.count() == 0


def test_complete_own_task(org):
    task = make_task(org.member_of_guide_a1, org.guide_a1)
    done = task_complete(
        task_id=task.pk, user=org.guide_a1, outcome=TaskOutcome.VISIT_BOOKED, note="周六到店"
    )
    assert (done.status, done.outcome, done.outcome_note, done.done_by_id) == (
        TaskStatus.DONE,
        TaskOutcome.VISIT_BOOKED,
        "周六到店",
        org.guide_a1.pk,
    )
    with pytest.raises(MemberError) as exc:
        task_complete(task_id=task.pk, user=org.guide_a1, outcome=TaskOutcome.REACHED)
    assert exc.value.code == "task_closed"


def test_completing_someone_elses_task_is_refused_and_changes_nothing(org):
    task = make_task(org.member_of_guide_a1, org.guide_a1)
    for user, code in (
        (org.guide_a1_other, "task_not_found"),
        (org.guide_b1, "task_not_found"),
        (org.store_manager_a1, "task_not_yours"),
    ):
        with pytest.raises(MemberError) as exc:
            task_complete(task_id=task.pk, user=user, outcome=TaskOutcome.REACHED)
        assert exc.value.code == code
    with pytest.raises(MemberError) as exc:
        task_complete(task_id=task.pk, user=org.guide_a1, outcome="magic")
    assert exc.value.code == "outcome_invalid"
    task.refresh_from_db()
    assert (task.status, task.outcome, task.done_at) == (TaskStatus.OPEN, "", None)


def test_hq_tasks_go_to_each_members_guide(org):
    ids = [org.member_of_guide_a1.pk, org.member_a1_unassigned.pk, org.member_b1.pk]
    result = tasks_create_for_members(
        member_ids=ids,
        title="双十一预热回访",
        detail="告知会员日活动",
        due_on=timezone.localdate() + timedelta(days=2),
        actor=org.hq_admin,
    )
    assert (result.created, result.without_guide) == (2, 1)
    assert sorted(FollowUpTask.objects.values_list("member_id", "guide_id", "kind")) == sorted(
        [
            (org.member_of_guide_a1.pk, org.guide_a1.pk, TaskKind.HQ),
            (org.member_b1.pk, org.guide_b1.pk, TaskKind.HQ),
        ]
    )


@pytest.mark.parametrize(
    ("title", "days", "ids", "code"),
    [
        ("", 1, True, "title_invalid"),
        ("回访", -1, True, "due_in_past"),
        ("回访", 1, False, "no_customers"),
    ],
)
def test_bad_hq_tasks_are_refused(org, title, days, ids, code):
    with pytest.raises(MemberError) as exc:
        tasks_create_for_members(
            member_ids=[org.member_of_guide_a1.pk] if ids else [],
            title=title,
            detail="",
            due_on=timezone.localdate() + timedelta(days=days),
            actor=org.hq_admin,
        )
    assert exc.value.code == code
    assert FollowUpTask.objects.count() == 0


# --- my customers and figures ------------------------------------------------------------


def test_my_customers_filters(org):
    guide = org.guide_a1
    mine = org.member_of_guide_a1
    second = MemberFactory(home_store=org.a1, guide=guide, name="周末", phone="+8613900005678")
    tag = TagFactory()
    member_tag_add(member=second, tag=tag, actor=org.hq_admin)
    make_task(second, guide, due_on=timezone.localdate() - timedelta(days=1))

    def ids(**kw):
        return set(
            my_customers(user=guide, filters=CustomerFilters(**kw)).values_list("pk", flat=True)
        )

    assert ids() == {mine.pk, second.pk}
    assert ids(search="5678") == {second.pk}
    assert ids(search="王小") == {mine.pk}
    assert ids(tag_id=tag.pk) == {second.pk}
    assert ids(due=True) == {second.pk}
    assert ids(stage=mine.lifecycle_stage) >= {mine.pk}
    # Another guide's customer never shows, whatever the search.
    assert org.member_of_guide_a1_other.pk not in ids(search="李小红")


def test_guide_figures_this_month(org):
    guide = org.guide_a1
    now = timezone.now()
    customers_transfer(
        member_ids=[org.member_a1_unassigned.pk], to_guide=guide, actor=org.store_manager_a1
    )
    order = order_record(
        channel="pos", external_id="F1", member=org.member_of_guide_a1, paid_at=now, amount="100"
    )
    Order.objects.filter(pk=order.pk).update(refunded_amount=Decimal("30"))
    order_record(
        channel="pos",
        external_id="F0",
        member=org.member_of_guide_a1,
        paid_at=now - timedelta(days=40),
        amount="500",
    )
    task = make_task(org.member_of_guide_a1, guide)
    task_complete(task_id=task.pk, user=guide, outcome=TaskOutcome.REACHED)
    make_task(org.member_of_guide_a1, guide, due_on=timezone.localdate() - timedelta(days=2))
    (row,) = guide_figures(guides=[guide])
    start_of_month = timezone.localdate().replace(day=1)
    old_in_month = timezone.localdate(now - timedelta(days=40)) >= start_of_month
    assert row.customers == 2
    assert row.new_this_month == 1
    assert row.sales == (Decimal("570") if old_in_month else Decimal("70"))
    assert row.tasks_done == 1
    assert row.tasks_due == 1
    board = guide_leaderboard(user=org.store_manager_a1)
    assert [r.guide.pk for r in board][0] == guide.pk
    assert {r.guide.pk for r in board} == {org.guide_a1.pk, org.guide_a1_other.pk}


def test_my_customers_by_segment_and_tier(org):
    from members.models import MemberTier, Segment, Tier

    guide = org.guide_a1
    mine = org.member_of_guide_a1
    female = MemberFactory(home_store=org.a1, guide=guide, gender="f")
    Member.objects.filter(pk=mine.pk).update(gender="m")
    women = Segment.objects.create(
        name="女性",
        rules={"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]},
    )
    other_store = Segment.objects.create(name="北京店女性", store=org.b1, rules=women.rules)
    gold = Tier.objects.create(name="金卡", rank=1, threshold=1)
    silver = Tier.objects.create(name="银卡", rank=0, threshold=0)
    MemberTier.objects.create(member=mine, tier=gold)
    # A hand-set tier wins while it lasts.
    MemberTier.objects.create(
        member=female,
        tier=gold,
        manual_tier=silver,
        manual_until=timezone.now() + timedelta(days=30),
    )
    org.member_of_guide_a1_other.gender = "f"
    org.member_of_guide_a1_other.save(update_fields=["gender"])

    def ids(**kw):
        return set(
            my_customers(user=guide, filters=CustomerFilters(**kw)).values_list("pk", flat=True)
        )

    assert ids(segment_id=women.pk) == {female.pk}
    assert ids(segment_id=other_store.pk) == set()  # another store's segment: nothing
    assert ids(tier_id=gold.pk) == {mine.pk}
    assert ids(tier_id=silver.pk) == {female.pk}


def test_the_pool_is_no_way_round_the_transfer_limit(org):
    member = org.member_of_guide_a1
    now = timezone.now()
    customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.hq_admin)
    customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1, actor=org.hq_admin)
    customers_to_pool(member_ids=[member.pk], actor=org.hq_admin)
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        customers_transfer(member_ids=[member.pk], to_guide=org.guide_a1_other, actor=org.hq_admin)
    assert exc.value.code == "transfer_limit"
    assert snapshot() == before
    counts = pool_distribute(store=org.a1, actor=org.store_manager_a1, now=now)
    member.refresh_from_db()
    assert member.guide_id is None  # kept in the pool, said so
    assert any("90" in label for label in counts)


def test_a_store_manager_cannot_hand_over_another_stores_customers(org):
    both = StaffFactory(role=Role.GUIDE, stores=[org.a1, org.b1])
    MemberFactory(home_store=org.a1, guide=both)
    MemberFactory(home_store=org.b1, guide=both)
    before = snapshot()
    with pytest.raises(MemberError) as exc:
        guide_depart(guide=both, actor=org.store_manager_a1)
    assert exc.value.code == "customers_elsewhere"
    assert snapshot() == before
    guide_depart(guide=both, actor=org.hq_admin)
    assert not Member.objects.filter(guide=both).exists()
