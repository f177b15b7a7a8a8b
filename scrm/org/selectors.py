from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import Role


def staff_by_username(username: str) -> Staff | None:
    return Staff.objects.filter(username=username).first()


def region_choices(*, user: Any) -> QuerySet[Region]:
    return Region.objects.for_user(user).order_by("code")


def store_choices(*, user: Any) -> QuerySet[Store]:
    return Store.objects.for_user(user).order_by("code")


def store_list(*, user: Any, search: str = "", region_id: int | None = None) -> QuerySet[Store]:
    stores: QuerySet[Store] = (
        Store.objects.for_user(user)
        .select_related("region")
        .annotate(
            guide_count=Count(
                "staff", filter=Q(staff__role=Role.GUIDE, staff__is_active=True), distinct=True
            ),
        )
        .order_by("code")
    )
    if search:
        stores = stores.filter(
            Q(name__icontains=search) | Q(code__icontains=search) | Q(city__icontains=search)
        )
    if region_id:
        stores = stores.filter(region_id=region_id)
    return stores


def staff_list(*, user: Any, search: str = "", role: str = "") -> QuerySet[Staff]:
    staff: QuerySet[Staff] = (
        Staff.objects.for_user(user)
        .select_related("region")
        .prefetch_related("stores")
        .order_by("username")
    )
    if search:
        staff = staff.filter(
            Q(username__icontains=search)
            | Q(display_name__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    if role:
        staff = staff.filter(role=role)
    return staff
