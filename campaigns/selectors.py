"""Reads for the campaigns pages, scoped by who asks."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from campaigns.models import Material
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
