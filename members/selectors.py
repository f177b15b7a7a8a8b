from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from members.models import (
    Coupon,
    Identity,
    LedgerEntry,
    LifecycleChange,
    Member,
    MemberMerge,
    MergeSuggestion,
    Order,
    Reward,
    SuggestionStatus,
)
from members.phones import try_normalize_phone


def member_search_q(search: str) -> Q:
    """Phone in any format (exact), name (contains), any identity value (exact),
    or the last four phone digits."""
    query = Q(name__icontains=search)
    identity_values = {search}
    phone = try_normalize_phone(search)
    if phone:
        query |= Q(phone=phone)
        identity_values.add(phone)
    elif search.isdigit() and len(search) == 4:
        query |= Q(phone__endswith=search)
    query |= Q(pk__in=Identity.objects.filter(value__in=identity_values).values("member_id"))
    return query


def member_list(
    *,
    user: Any,
    search: str = "",
    store_id: int | None = None,
    stage: str = "",
    source: str = "",
    registered_from: date | None = None,
    registered_to: date | None = None,
) -> QuerySet[Member]:
    members: QuerySet[Member] = Member.objects.for_user(user).select_related("home_store", "guide")
    if search:
        members = members.filter(member_search_q(search))
    if store_id:
        members = members.filter(home_store_id=store_id)
    if stage:
        members = members.filter(lifecycle_stage=stage)
    if source:
        members = members.filter(source_channel=source)
    tz = timezone.get_current_timezone()
    if registered_from:
        members = members.filter(created_at__gte=datetime.combine(registered_from, time.min, tz))
    if registered_to:
        members = members.filter(
            created_at__lt=datetime.combine(registered_to + timedelta(days=1), time.min, tz)
        )
    return members.order_by("-created_at", "-pk")


def member_for_profile(*, user: Any, member_id: int) -> Member | None:
    return (
        Member.objects.for_user(user)
        .select_related("home_store", "home_store__region", "guide", "merged_into")
        .filter(pk=member_id)
        .first()
    )


def member_identities(member: Member) -> QuerySet[Identity]:
    return Identity.objects.filter(member=member).order_by("kind", "app", "value")


def member_orders(member: Member, *, limit: int = 20) -> list[Order]:
    return list(
        Order.objects.filter(member=member)
        .select_related("store", "guide")
        .prefetch_related("lines")
        .order_by("-paid_at", "-pk")[:limit]
    )


def member_lifecycle_history(member: Member, *, limit: int = 20) -> list[LifecycleChange]:
    return list(
        LifecycleChange.objects.filter(member=member).order_by("-changed_at", "-pk")[:limit]
    )


def member_merges(member: Member) -> list[MemberMerge]:
    return list(
        MemberMerge.objects.filter(Q(kept=member) | Q(dropped=member))
        .select_related("merged_by", "undone_by")
        .order_by("-merged_at")
    )


def pool_size(*, user: Any) -> int:
    return Member.objects.for_user(user).count()


def pool_new_since(*, user: Any, days: int = 7) -> int:
    since = timezone.now() - timedelta(days=days)
    return Member.objects.for_user(user).filter(created_at__gte=since).count()


def open_suggestions(*, user: Any) -> QuerySet[MergeSuggestion]:
    """Open suggestions whose two members are both still in the pool and visible to `user`."""
    visible = Member.objects.for_user(user).values("pk")
    members = Member.objects.select_related("home_store").prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("kind", "value"))
    )
    return (
        MergeSuggestion.objects.filter(
            status=SuggestionStatus.OPEN, member_a__in=visible, member_b__in=visible
        )
        .prefetch_related(
            Prefetch("member_a", queryset=members), Prefetch("member_b", queryset=members)
        )
        .order_by("-created_at", "-pk")
    )


def merge_history(*, user: Any) -> QuerySet[MemberMerge]:
    return (
        MemberMerge.objects.filter(kept__in=Member.all_objects.for_user(user).values("pk"))
        .select_related("kept", "dropped", "merged_by", "undone_by")
        .order_by("-merged_at", "-pk")
    )


def points_history(*, member: Member, account: str = "") -> QuerySet[LedgerEntry]:
    """The member's ledger entries, newest first, with the lot (for expiry) joined."""
    entries = LedgerEntry.objects.filter(account__member=member).select_related("account", "lot")
    if account:
        entries = entries.filter(account__kind=account)
    return entries.order_by("-created_at", "-id")


def usable_coupons(*, member: Member) -> QuerySet[Coupon]:
    return Coupon.objects.filter(member=member, status="issued", valid_until__gt=timezone.now())


def member_coupons(*, member: Member, status: str = "") -> QuerySet[Coupon]:
    coupons = Coupon.objects.filter(member=member).select_related("template")
    if status:
        coupons = coupons.filter(status=status)
    return coupons.order_by("-issued_at", "-id")


def mall_rewards() -> QuerySet[Reward]:
    """Rewards on offer now (out-of-stock ones included: shown as such)."""
    now = timezone.now()
    return (
        Reward.objects.filter(active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .select_related("min_tier")
        .order_by("points_price", "id")
    )


def points_liability() -> dict[str, int]:
    """Activity points outstanding (what members could still redeem) and growth value."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(balance) FILTER (WHERE kind = 'activity'), 0)::bigint, "
            "COALESCE(sum(balance) FILTER (WHERE kind = 'growth'), 0)::bigint, count(*) "
            "FROM members_pointsaccount"
        )
        activity, growth, accounts = cursor.fetchone()
    return {"activity": activity, "growth": growth, "accounts": accounts}


def member_ledger(member: Member, limit: int = 20) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account__member=member)
        .select_related("account", "actor", "lot")
        .order_by("-created_at", "-id")[:limit]
    )
