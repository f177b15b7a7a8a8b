from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from import_export.admin import ImportMixin

from members.admin import MemberAdmin
from members.models import Member
from scrm.core.admin import ReadOnly
from scrm.org.admin import ScopedAdmin, ScopedThroughAdmin
from touchpoints.models import (
    Channel,
    EventClient,
    FeedbackCategory,
    ImportEvent,
    ImportJob,
    ImportMapping,
    ImportRowError,
    Survey,
    SurveyQuestion,
    Ticket,
    Touchpoint,
)
from touchpoints.resources import MemberImportResource

# The member admin gains django-import-export's Import button (preview, then confirm) for
# small files; it is registered here because imports belong to the touchpoints app.
admin.site.unregister(Member)


@admin.register(Member)
class MemberWithImportAdmin(ImportMixin, MemberAdmin):
    resource_classes = [MemberImportResource]
    # Rows are applied set-wise (no model instance per row to log); the import is audited
    # by its own counts instead of one admin log entry per row.
    skip_admin_log = True

    def has_import_permission(self, request: HttpRequest) -> bool:
        # django-import-export lets any staff member import by default. An import creates
        # and updates members, and imports are head office's work (as on /hq/imports/).
        user: Any = request.user
        return (
            user.is_hq and self.has_add_permission(request) and self.has_change_permission(request)
        )


class ImportEventInline(admin.TabularInline):
    model = ImportEvent
    extra = 0
    readonly_fields = ["at", "message"]
    can_delete = False


@admin.register(ImportJob)
class ImportJobAdmin(ScopedAdmin):
    list_display = [
        "pk",
        "original_name",
        "kind",
        "source",
        "status",
        "rows_done",
        "created",
        "rejected",
        "created_at",
    ]
    list_filter = ["status", "kind", "source"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    inlines = [ImportEventInline]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ImportRowError)
class ImportRowErrorAdmin(ScopedThroughAdmin, ReadOnly):
    scope_through = ("job",)
    list_display = ["job", "row_number", "column", "value", "reason"]
    list_filter = ["job"]


@admin.register(ImportMapping)
class ImportMappingAdmin(admin.ModelAdmin):
    list_display = ["source", "kind", "updated_at", "updated_by"]
    list_filter = ["kind"]


class SurveyQuestionInline(admin.TabularInline):
    model = SurveyQuestion
    extra = 1


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    """HQ writes surveys here; after-purchase ones go out hourly on their own."""

    list_display = ["name", "kind", "trigger", "delay_hours", "active"]
    list_filter = ["kind", "trigger", "active"]
    inlines = [SurveyQuestionInline]


@admin.register(FeedbackCategory)
class FeedbackCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "department", "active"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "code", "active"]


@admin.register(Touchpoint)
class TouchpointAdmin(ScopedAdmin):
    list_display = ["name", "kind", "channel", "store", "active"]
    list_filter = ["kind", "channel"]
    search_fields = ["name", "code"]


@admin.register(EventClient)
class EventClientAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["name", "channel", "key_hint", "active"]


@admin.register(Ticket)
class TicketAdmin(ScopedAdmin, ReadOnly):
    list_display = ["subject", "store", "department", "status", "due_at", "assignee"]
    list_filter = ["status", "source"]
    raw_id_fields = ["member"]
