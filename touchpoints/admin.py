from django.contrib import admin
from import_export.admin import ImportMixin

from members.admin import MemberAdmin
from members.models import Member
from scrm.core.admin import ReadOnly
from scrm.org.admin import ScopedAdmin, ScopedThroughAdmin
from touchpoints.models import ImportEvent, ImportJob, ImportMapping, ImportRowError
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
