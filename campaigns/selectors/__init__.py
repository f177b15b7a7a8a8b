"""Reads for the campaigns pages, scoped by who asks."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from campaigns.models import AttributionSetting, Broadcast, Conversion, GuideSendTask, Material
from scrm.org.models import Store
from scrm.org.scoping import Role

_ROLES_WITH_STORES = (Role.REGION_MANAGER, Role.STORE_MANAGER, Role.GUIDE)


# --- who sees and edits what ----------------------------------------------------------------


def materials_for_user(user: Any) -> QuerySet[Material]:
    """The materials `user` may read: everything for head office; head office's and their
    stores' own for managers and guides; nothing for anyone else."""
    materials = Material.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return materials.none()
    if user.is_hq:
        return materials
    if user.role not in _ROLES_WITH_STORES:
        return materials.none()
    return materials.filter(Q(store__isnull=True) | Q(store__in=Store.objects.for_user(user)))


def can_edit(user: Any, material: Material) -> bool:
    """Head office edits every material; a manager only those of their own stores."""
    if getattr(user, "is_hq", False):
        return True
    if material.store_id is None or getattr(user, "role", None) == Role.GUIDE:
        return False
    return Store.objects.for_user(user).filter(pk=material.store_id).exists()


def visible_broadcast_ids(user: Any, broadcasts: list[Broadcast]) -> set[int]:
    """Which of `broadcasts` `user` may see (one query): another store's is not named."""
    return set(
        Broadcast.objects.for_user(user)
        .filter(pk__in=[b.pk for b in broadcasts])
        .values_list("pk", flat=True)
    )


def conversions_summary(**filters: Any) -> dict[str, Any]:
    """Orders converted (last touch within the window) and their revenue net of refunds,
    for a broadcast (`broadcast=`) or a campaign (`campaign=`), with the window used."""
    summary = Conversion.objects.filter(**filters).aggregate(
        orders=Count("pk"), revenue=Sum("revenue")
    )
    summary["window_days"] = AttributionSetting.current().window_days
    return summary


def guide_send_tasks(user: Any) -> QuerySet[GuideSendTask]:
    """The guide's own tasks that WeCom has been handed. A guide-posted broadcast's task
    exists from planning on, before (and, if it is cancelled or WeCom refuses, without)
    anything reaching the guide's WeCom: not a task to carry out or confirm yet."""
    return GuideSendTask.objects.filter(guide_id=user.pk, handed_at__isnull=False).select_related(
        "broadcast__material"
    )
