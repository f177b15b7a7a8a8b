"""Import-export resources. Phones are always masked in exports (a full number is only
ever shown one at a time, audited, on the member's profile or card)."""

from __future__ import annotations

from typing import Any

from import_export import fields, resources

from members.models import Member


class MemberExportResource(resources.ModelResource):
    phone = fields.Field(column_name="phone")
    home_store = fields.Field(column_name="home store")
    guide = fields.Field(column_name="guide")
    lifecycle_stage = fields.Field(column_name="lifecycle stage")
    source_channel = fields.Field(column_name="source channel")
    gender = fields.Field(column_name="gender")

    class Meta:
        model = Member
        fields = (
            "id",
            "name",
            "gender",
            "birthday",
            "phone",
            "city",
            "home_store",
            "guide",
            "lifecycle_stage",
            "source_channel",
            "order_count",
            "total_spent",
            "last_order_at",
            "member_since",
            "created_at",
        )
        export_order = fields

    def __init__(self, *, user: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user

    def dehydrate_phone(self, member: Member) -> str:
        return member.masked_phone

    def dehydrate_home_store(self, member: Member) -> str:
        return member.home_store.name if member.home_store else ""

    def dehydrate_guide(self, member: Member) -> str:
        return str(member.guide) if member.guide else ""

    def dehydrate_lifecycle_stage(self, member: Member) -> str:
        return str(member.get_lifecycle_stage_display())

    def dehydrate_source_channel(self, member: Member) -> str:
        return str(member.get_source_channel_display()) if member.source_channel else ""

    def dehydrate_gender(self, member: Member) -> str:
        return str(member.get_gender_display())
