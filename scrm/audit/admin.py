from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from scrm.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only (a database trigger refuses changes)."""

    list_display = ["at", "actor_label", "action", "table", "row_id", "member_id", "origin"]
    list_filter = ["action", "table"]
    search_fields = ["=row_id", "actor_label"]
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
