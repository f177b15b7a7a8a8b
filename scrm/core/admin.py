from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from scrm.core.models import AuditEvent, WorkerHeartbeat, WorkerPing


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    list_filter = ["action", "target_type"]
    search_fields = ["=target_id"]


@admin.register(WorkerPing)
class WorkerPingAdmin(ReadOnly):
    list_display = ["pk", "requested_by", "requested_at", "done_at", "worker_hostname"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnly):
    list_display = ["hostname", "seen_at"]
