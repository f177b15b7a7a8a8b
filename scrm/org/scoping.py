"""`for_user(user)`: the one place that decides which rows a staff member may see.

Every list, count, export and filter choice goes through it, so a guide sees only
their own customers and a store manager only their stores. Models declare *where*
their store, region and guide live with a `Scope`; the rules per role live here once.

| role | sees |
|---|---|
| HQ admin, HQ operator (and superusers) | everything |
| region manager | rows whose store is in their region |
| store manager | rows whose store is one of theirs (and the regions of those stores) |
| guide | rows assigned to them (`Scope.guide`); for models without a guide, rows of their store |
| anyone else (anonymous, inactive, no role) | nothing |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from scrm.org.models import Staff


class Role(models.TextChoices):
    HQ_ADMIN = "hq_admin", _("HQ admin")
    HQ_OPERATOR = "hq_operator", _("HQ operator")
    REGION_MANAGER = "region_manager", _("Region manager")
    STORE_MANAGER = "store_manager", _("Store manager")
    GUIDE = "guide", _("Guide")


HQ_ROLES = frozenset({Role.HQ_ADMIN, Role.HQ_OPERATOR})


@dataclass(frozen=True)
class Scope:
    """Lookup paths from a model to what scoping needs.

    `store`: path to a Store ("" when the model is Store itself); `region`: paths to a
    Region ("" when the model is Region); `guide`: path to the responsible guide ("" when
    the model is Staff itself), or None when the model has no guide. `distinct` marks
    paths that cross many-to-many relations, where a join could repeat rows.
    """

    store: str | None
    region: tuple[str, ...]
    guide: str | None = None
    distinct: bool = False


def _path(path: str, suffix: str) -> str:
    return f"{path}__{suffix}" if path else suffix


def scope_filter(scope: Scope, user: Any) -> Q | None:
    """The Q a user's rows satisfy; None means all rows, and an impossible Q means none."""
    nothing = Q(pk__in=[])
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return nothing
    if user.is_superuser or user.role in HQ_ROLES:
        return None
    if user.role == Role.REGION_MANAGER:
        if user.region_id is None:
            return nothing
        q = Q()
        for path in scope.region:
            q |= Q(**{_path(path, "pk") if path else "pk": user.region_id})
        return q if scope.region else nothing
    store_ids = list(user.stores.values_list("pk", flat=True))
    if user.role in (Role.STORE_MANAGER, Role.GUIDE) and scope.store is None:
        # Region: the regions of their stores.
        return Q(pk__in=user.stores.values("region_id"))
    if scope.store is None:
        return nothing
    if user.role == Role.STORE_MANAGER:
        if not store_ids:
            return nothing
        q = Q(**{_path(scope.store, "pk__in"): store_ids})
        if scope.guide == "":  # Staff: a store manager also sees themselves
            q |= Q(pk=user.pk)
        return q
    if user.role == Role.GUIDE:
        if scope.guide is not None:
            return Q(pk=user.pk) if scope.guide == "" else Q(**{_path(scope.guide, "pk"): user.pk})
        return Q(**{_path(scope.store, "pk__in"): store_ids}) if store_ids else nothing
    return nothing


_QS = TypeVar("_QS", bound="ScopedQuerySet[Any]")
_M = TypeVar("_M", bound=models.Model)


_Q = TypeVar("_Q", bound=models.QuerySet[Any])


def for_user(queryset: _Q, user: Staff | Any) -> _Q:
    """The rows of `queryset` that `user` may see. Works on any model that declares `scope`."""
    scope: Scope = queryset.model.scope
    q = scope_filter(scope, user)
    if q is None:
        return queryset
    if scope.distinct:
        return queryset.filter(pk__in=queryset.model._default_manager.filter(q).values("pk"))
    return queryset.filter(q)


class ScopedQuerySet(models.QuerySet[_M]):
    def for_user(self: _QS, user: Staff | Any) -> _QS:
        return for_user(self, user)
