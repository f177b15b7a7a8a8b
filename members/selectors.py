from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from members.models import Member


def member_list(*, user: Any, search: str = "") -> QuerySet[Member]:
    members: QuerySet[Member] = Member.objects.for_user(user).select_related("home_store", "guide")
    if search:
        query = Q(name__icontains=search)
        if search.isdigit() and len(search) == 4:
            query |= Q(phone__endswith=search)
        members = members.filter(query)
    return members.order_by("-created_at", "-pk")


def pool_figures(*, user: Any) -> dict[str, int]:
    week_ago = timezone.now() - timedelta(days=7)
    members: QuerySet[Member] = Member.objects.for_user(user)
    return {
        "pool": members.count(),
        "new_this_week": members.filter(created_at__gte=week_ago).count(),
    }
