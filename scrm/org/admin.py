from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from scrm.org.models import Region, Staff, Store
from scrm.org.scoping import for_user, scope_filter


class ScopedAdmin(admin.ModelAdmin):
    """Admin changelists and choices follow `for_user` like every other list."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return for_user(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if hasattr(db_field.related_model, "scope"):
            kwargs["queryset"] = for_user(
                db_field.related_model._default_manager.all(), request.user
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if hasattr(db_field.related_model, "scope"):
            kwargs["queryset"] = for_user(
                db_field.related_model._default_manager.all(), request.user
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Region)
class RegionAdmin(ScopedAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Store)
class StoreAdmin(ScopedAdmin):
    list_display = ["code", "name", "city", "region", "is_active"]
    list_filter = ["region", "is_active"]
    search_fields = ["code", "name", "city"]
    list_select_related = ["region"]


@admin.register(Staff)
class StaffAdmin(ScopedAdmin, UserAdmin):
    list_display = ["username", "display_name", "role", "region", "is_active", "last_login"]
    list_filter = ["role", "is_active", "region"]
    search_fields = ["username", "display_name", "first_name", "last_name"]
    list_select_related = ["region"]
    filter_horizontal = ["stores", "groups", "user_permissions"]
    fieldsets = (
        *UserAdmin.fieldsets,  # type: ignore[misc]
        (_("Role and scope"), {"fields": ("display_name", "phone", "role", "region", "stores")}),
    )
    add_fieldsets = (
        *UserAdmin.add_fieldsets,
        (_("Role and scope"), {"fields": ("display_name", "role", "region", "stores")}),
    )


class ScopedThroughAdmin(admin.ModelAdmin):
    """For rows that belong to a scoped object (a member's merges, a job's errors): only
    rows whose `scope_through` objects the user may see."""

    scope_through: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        for name in self.scope_through:
            related = queryset.model._meta.get_field(name).related_model
            condition = scope_filter(related.scope, request.user)
            if condition is not None:
                visible = related._base_manager.filter(condition).values("pk")
                queryset = queryset.filter(**{f"{name}__in": visible})
        return queryset
