"""Campaign admin: head office sets the frequency caps every campaign shares, the
providers' rate limits and the attribution window (each change audited), and reviews
opt-outs, conversions and the sandbox's record of what "left". Referrals live in
`admin_referrals`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from campaigns import admin_referrals  # noqa: F401  (registers the referral admin)
from campaigns.models import (
    AttributionSetting,
    ConsentEntry,
    Conversion,
    FrequencyRule,
    GatewayThrottle,
    MarketingOptOut,
    SandboxCall,
)
from scrm.core.admin import ReadOnly
from scrm.core.services import audit_record


class AuditedSettingAdmin(admin.ModelAdmin):
    """Caps and rate limits change what every campaign may send: audit each change."""

    def save_model(
        self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=f"campaigns.{obj._meta.model_name}.{'update' if change else 'create'}",
            target=obj,
            data={name: str(form.cleaned_data[name]) for name in form.changed_data},
        )

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        audit_record(
            actor=request.user, action=f"campaigns.{obj._meta.model_name}.delete", target=obj
        )
        super().delete_model(request, obj)


@admin.register(FrequencyRule)
class FrequencyRuleAdmin(AuditedSettingAdmin):
    list_display = ["__str__", "channel", "per_day", "per_month"]


@admin.register(GatewayThrottle)
class GatewayThrottleAdmin(AuditedSettingAdmin):
    list_display = ["gateway", "per_second"]
    fields = ["gateway", "per_second"]


@admin.register(MarketingOptOut)
class MarketingOptOutAdmin(ReadOnly):
    list_display = ["member", "channel", "created_at"]
    list_filter = ["channel"]
    search_fields = ["=member__id"]
    list_select_related = ["member"]


@admin.register(ConsentEntry)
class ConsentEntryAdmin(ReadOnly):
    """The consent ledger, as proof: read only (decisions are recorded, never edited)."""

    list_display = ["recorded_at", "member", "purpose", "granted", "source", "channel"]
    list_filter = ["purpose", "granted", "source", "channel"]
    search_fields = ["=member__id"]
    list_select_related = ["member"]


@admin.register(SandboxCall)
class SandboxCallAdmin(ReadOnly):
    list_display = ["created_at", "gateway", "member_id", "key", "outcome"]
    list_filter = ["gateway", "outcome"]
    search_fields = ["=key", "=member_id"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("content")


@admin.register(AttributionSetting)
class AttributionSettingAdmin(AuditedSettingAdmin):
    list_display = ["__str__", "window_days", "read_until"]
    fields = ["window_days"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not AttributionSetting.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversion)
class ConversionAdmin(ReadOnly):
    list_display = ["converted_at", "order", "broadcast", "campaign", "channel", "revenue"]
    list_filter = ["channel"]
    list_select_related = ["order", "broadcast", "campaign"]
    search_fields = ["=order__external_id"]
