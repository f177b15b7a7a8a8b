"""Reads for guides and their managers: my customers with their filters, a customer's
timeline, follow-up tasks, and the figures on "my performance" and the leaderboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import (
    FollowUpTask,
    GuideAssignment,
    LifecycleChange,
    Member,
    MemberTagLog,
    Order,
    Segment,
    ServiceNote,
    Tag,
    TaskStatus,
)
from members.models.guides import NEW_CUSTOMER_REASONS
from members.selectors import member_search_q
from scrm.org.models import Staff
from scrm.org.scoping import Role


@dataclass(frozen=True)
class CustomerFilters:
    search: str = ""
    tag_id: int | None = None
    segment_id: int | None = None
    stage: str = ""
    tier_id: int | None = None
    due: bool = False


def segment_choices(*, user: Any) -> QuerySet[Segment]:
    """Segments a guide may filter by: head office's and their stores'."""
    stores = user.stores.values("pk")
    return Segment.objects.filter(
        Q(store__isnull=True) | Q(store__in=stores), archived=False
    ).order_by("name")


def tag_choices() -> QuerySet[Tag]:
    return (
        Tag.objects.filter(active=True)
        .select_related("group")
        .order_by("group__position", "group__name", "name")
    )


def my_customers(
    *, user: Any, filters: CustomerFilters, now: datetime | None = None
) -> QuerySet[Member]:
    """The customers `user` serves (a guide: their own), narrowed by the filters, with the
    number of due follow-ups on each."""
    from members.services.segments import segment_members

    now = now or timezone.now()
    today = timezone.localdate(now)
    members = Member.objects.for_user(user).select_related("home_store")
    if filters.search:
        members = members.filter(member_search_q(filters.search))
    if filters.tag_id:
        members = members.filter(member_tags__tag_id=filters.tag_id)
    if filters.stage:
        members = members.filter(lifecycle_stage=filters.stage)
    if filters.tier_id:
        manual = Q(tier_state__manual_tier__isnull=False, tier_state__manual_until__gt=now)
        members = members.filter(
            Q(manual, tier_state__manual_tier_id=filters.tier_id)
            | Q(~manual, tier_state__tier_id=filters.tier_id)
        )
    if filters.segment_id:
        segment = segment_choices(user=user).filter(pk=filters.segment_id).first()
        if segment is None:
            return members.none()
        members = members.filter(pk__in=segment_members(segment, user=user).values("pk"))
    due_q = Q(follow_ups__status=TaskStatus.OPEN, follow_ups__due_on__lte=today)
    if getattr(user, "role", None) == Role.GUIDE:
        due_q &= Q(follow_ups__guide=user)
    annotated = members.annotate(due_tasks=Count("follow_ups", filter=due_q))
    if filters.due:
        annotated = annotated.filter(due_tasks__gt=0)
    return annotated.order_by("-due_tasks", "-last_order_at", "-pk")


def customer_for_user(*, user: Any, member_id: int) -> Member | None:
    return (
        Member.objects.for_user(user)
        .select_related("home_store", "guide")
        .filter(pk=member_id)
        .first()
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # order, note, tag, assignment, task, stage
    item: Any


def member_timeline(member: Member, *, limit: int = 30) -> list[TimelineEntry]:
    """Everything that happened with a customer, newest first: purchases, notes (by any
    guide, so a new guide reads the whole story), tags, guide changes, tasks done, stages."""
    entries: list[TimelineEntry] = []
    for order in (
        Order.objects.filter(member=member)
        .select_related("store", "guide")
        .prefetch_related("lines")
        .order_by("-paid_at", "-pk")[:limit]
    ):
        entries.append(TimelineEntry(order.paid_at, "order", order))
    for note in ServiceNote.objects.filter(member=member).select_related("author")[:limit]:
        entries.append(TimelineEntry(note.created_at, "note", note))
    for log in (
        MemberTagLog.objects.filter(member=member)
        .select_related("tag", "actor")
        .order_by("-at", "-pk")[:limit]
    ):
        entries.append(TimelineEntry(log.at, "tag", log))
    for change in GuideAssignment.objects.filter(member=member).select_related(
        "from_guide", "to_guide", "actor"
    )[:limit]:
        entries.append(TimelineEntry(change.created_at, "assignment", change))
    for task in (
        FollowUpTask.objects.filter(member=member, status=TaskStatus.DONE)
        .select_related("done_by")
        .order_by("-done_at")[:limit]
    ):
        entries.append(TimelineEntry(task.done_at or task.created_at, "task", task))
    for stage in LifecycleChange.objects.filter(member=member).order_by("-changed_at", "-pk")[
        :limit
    ]:
        entries.append(TimelineEntry(stage.changed_at, "stage", stage))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def member_notes(member: Member, *, limit: int = 50) -> list[ServiceNote]:
    return list(ServiceNote.objects.filter(member=member).select_related("author")[:limit])


def member_open_tasks(member: Member) -> list[FollowUpTask]:
    return list(
        FollowUpTask.objects.filter(member=member, status=TaskStatus.OPEN).select_related("guide")
    )


def member_assignments(member: Member, *, limit: int | None = 50) -> list[GuideAssignment]:
    return list(
        GuideAssignment.objects.filter(member=member).select_related(
            "from_guide", "to_guide", "actor", "store"
        )[:limit]
    )


def task_list(
    *, user: Any, scope: str = "due", today: date | None = None
) -> QuerySet[FollowUpTask]:
    """A guide's tasks: `due` (overdue and today's), `upcoming` (the next 7 days), `done`
    (the last 30 days) or `all`."""
    today = today or timezone.localdate()
    tasks: QuerySet[FollowUpTask] = FollowUpTask.objects.for_user(user).select_related(
        "member", "guide"
    )
    if getattr(user, "role", None) == Role.GUIDE:
        tasks = tasks.filter(guide=user)
    if scope == "all":
        return tasks
    if scope == "upcoming":
        return tasks.filter(
            status=TaskStatus.OPEN, due_on__gt=today, due_on__lte=today + timedelta(days=7)
        ).order_by("due_on", "pk")
    if scope == "done":
        return tasks.filter(
            status=TaskStatus.DONE, due_on__gte=today - timedelta(days=30)
        ).order_by("-done_at", "-pk")
    return tasks.filter(status=TaskStatus.OPEN, due_on__lte=today).order_by("due_on", "pk")


def hq_task_list(
    *, user: Any, status: str = "", kind: str = "", guide_id: int | None = None
) -> QuerySet[FollowUpTask]:
    tasks: QuerySet[FollowUpTask] = FollowUpTask.objects.for_user(user).select_related(
        "member", "guide", "member__home_store"
    )
    if status:
        tasks = tasks.filter(status=status)
    if kind:
        tasks = tasks.filter(kind=kind)
    if guide_id:
        tasks = tasks.filter(guide_id=guide_id)
    return tasks.order_by("status", "due_on", "pk")


def month_start(today: date) -> datetime:
    return datetime.combine(today.replace(day=1), time.min, timezone.get_current_timezone())


@dataclass
class GuideFigures:
    guide: Staff
    customers: int = 0
    new_this_month: int = 0
    sales: Decimal = Decimal("0")
    orders: int = 0
    tasks_done: int = 0
    tasks_due: int = 0


def guide_figures(
    *, guides: QuerySet[Staff] | list[Staff], today: date | None = None
) -> list[GuideFigures]:
    """Per guide, this month: customers now, customers newly theirs (not by transfer),
    attributed sales (net of refunds, credited at purchase time), tasks done, and open
    tasks due. Five grouped queries, whatever the number of guides."""
    today = today or timezone.localdate()
    start = month_start(today)
    figures = {g.pk: GuideFigures(guide=g) for g in guides}
    ids = list(figures)
    if not ids:
        return []
    for guide_id, n in (
        Member.objects.filter(guide_id__in=ids)
        .values_list("guide_id")
        .annotate(n=Count("pk"))
        .values_list("guide_id", "n")
    ):
        figures[guide_id].customers = n
    for guide_id, n in (
        GuideAssignment.objects.filter(
            to_guide_id__in=ids,
            created_at__gte=start,
            reason__in=NEW_CUSTOMER_REASONS,
            member__guide_id=F("to_guide_id"),
        )
        .values_list("to_guide_id")
        .annotate(n=Count("member_id", distinct=True))
        .values_list("to_guide_id", "n")
    ):
        figures[guide_id].new_this_month = n
    money: DecimalField[Decimal, Decimal] = DecimalField(max_digits=14, decimal_places=2)
    for guide_id, total, n in (
        Order.objects.filter(guide_id__in=ids, paid_at__gte=start)
        .values_list("guide_id")
        .annotate(
            total=Coalesce(Sum(F("amount") - F("refunded_amount")), Value(0), output_field=money),
            n=Count("pk"),
        )
        .values_list("guide_id", "total", "n")
    ):
        figures[guide_id].sales = total
        figures[guide_id].orders = n
    for guide_id, done, due in (
        FollowUpTask.objects.filter(guide_id__in=ids)
        .values_list("guide_id")
        .annotate(
            done=Count("pk", filter=Q(status=TaskStatus.DONE, done_at__gte=start)),
            due=Count("pk", filter=Q(status=TaskStatus.OPEN, due_on__lte=today)),
        )
        .values_list("guide_id", "done", "due")
    ):
        figures[guide_id].tasks_done = done
        figures[guide_id].tasks_due = due
    return list(figures.values())


def guide_leaderboard(
    *, user: Any, store_id: int | None = None, today: date | None = None
) -> list[GuideFigures]:
    """The guides `user` manages, best sellers this month first."""
    guides = Staff.objects.for_user(user).filter(role=Role.GUIDE).prefetch_related("stores")
    if store_id:
        guides = guides.filter(stores=store_id)
    rows = guide_figures(guides=list(guides.order_by("pk")), today=today)
    rows.sort(key=lambda r: (-r.sales, -r.customers, r.guide.pk))
    return rows


def guide_for_manager(*, user: Any, guide_id: int) -> Staff | None:
    return (
        Staff.objects.for_user(user)
        .filter(pk=guide_id, role=Role.GUIDE)
        .prefetch_related("stores")
        .first()
    )


def colleagues(*, guide: Staff, user: Any) -> QuerySet[Staff]:
    """Active guides of the same stores as `guide`, whom `user` manages: who can take over."""
    return (
        Staff.objects.for_user(user)
        .guides()
        .filter(stores__in=guide.stores.values("pk"))
        .exclude(pk=guide.pk)
        .distinct()
        .order_by("username")
    )


def store_guides(*, user: Any, store_id: int) -> QuerySet[Staff]:
    return Staff.objects.for_user(user).guides().filter(stores=store_id).order_by("username")


def store_pools(*, user: Any) -> list[dict[str, Any]]:
    """Each store the user manages with its count of customers without a guide."""
    from scrm.org.models import Store

    stores: QuerySet[Any] = Store.objects.for_user(user).annotate(
        unassigned=Count(
            "members",
            filter=Q(members__guide__isnull=True, members__merged_into__isnull=True),
            distinct=True,
        ),
        guides=Count(
            "staff", filter=Q(staff__role=Role.GUIDE, staff__is_active=True), distinct=True
        ),
    )
    return [
        {"store": s, "unassigned": s.unassigned, "guides": s.guides}
        for s in stores.order_by("code")
    ]
