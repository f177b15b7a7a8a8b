from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import Gender, Member


class StoreBrief(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class MemberCardOutput(serializers.ModelSerializer[Member]):
    """The member card the mini-program shows. Phones are masked, even to their owner."""

    phone = serializers.CharField(source="masked_phone")
    is_member = serializers.SerializerMethodField()
    lifecycle_stage_label = serializers.CharField(source="get_lifecycle_stage_display")
    home_store = StoreBrief(allow_null=True)

    class Meta:
        model = Member
        fields = [
            "id",
            "name",
            "gender",
            "birthday",
            "city",
            "phone",
            "is_member",
            "member_since",
            "lifecycle_stage",
            "lifecycle_stage_label",
            "home_store",
            "order_count",
            "total_spent",
        ]

    def get_is_member(self, member: Member) -> bool:
        return member.member_since is not None


class TokensOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    access_expires_in = serializers.IntegerField()
    member = MemberCardOutput()


class WechatLoginInput(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from wx.login()")


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=200)


class PhoneBindInput(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from getPhoneNumber")


class MemberUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=50, allow_blank=False, trim_whitespace=True)
    gender = serializers.ChoiceField(choices=Gender.choices)
    birthday = serializers.DateField(allow_null=True)
    city = serializers.CharField(max_length=50, allow_blank=True, trim_whitespace=True)

    def validate_birthday(self, value: date | None) -> date | None:
        if value is not None and (value > timezone.localdate() or value.year < 1900):
            raise serializers.ValidationError(_("Birthday must be a real date in the past."))
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed here.")] for name in sorted(unknown)}
            )
        if not attrs:
            raise serializers.ValidationError(_("Send at least one field to change."))
        return attrs
