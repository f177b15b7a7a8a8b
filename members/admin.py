from django.contrib import admin

from members.models import Member
from scrm.org.admin import ScopedAdmin


@admin.register(Member)
class MemberAdmin(ScopedAdmin):
    list_display = [
        "name",
        "masked_phone",
        "gender",
        "city",
        "home_store",
        "guide",
        "lifecycle_stage",
        "created_at",
    ]
    list_filter = ["lifecycle_stage", "gender", "home_store__region"]
    search_fields = ["name", "phone"]
    list_select_related = ["home_store", "guide"]
    raw_id_fields = ["guide"]
    show_full_result_count = False
