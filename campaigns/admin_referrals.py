"""Admin for referrals (裂变): HQ sets the rewards and switches the programme on, and reviews
who invited whom and why an invite earned nothing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from campaigns.models import InviteCode, Referral, ReferralProgramme, ReferralStatus
from campaigns.services.referrals import referral_credit
from members.services.loyalty_settings import loyalty_setting_save
from scrm.core.admin import ReadOnly as ReadOnlyAdmin
from scrm.org.admin import ScopedThroughAdmin


@admin.register(ReferralProgramme)
class ReferralProgrammeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "active", "level1_points", "level2_points", "points_valid_days"]
    fields = ["active", "level1_points", "level2_points", "points_valid_days"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ReferralProgramme.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ReferralProgramme, form: forms.ModelForm, change: bool
    ) -> None:
        """Reward amounts cost the brand money: every change is audited."""
        loyalty_setting_save(form=form, kind="referral_programme", actor=request.user)


@admin.register(Referral)
class ReferralAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("invitee",)
    list_display = [
        "created_at",
        "invitee",
        "inviter",
        "level2_inviter",
        "status",
        "rejected_reason",
        "level1_points",
        "level2_points",
        "decided_at",
    ]
    list_filter = ["status", "rejected_reason"]
    search_fields = ["=invitee__id", "=inviter__id", "=level2_inviter__id", "=device_id"]
    list_select_related = ["invitee", "inviter", "level2_inviter"]
    exclude = ["invitee_phone"]
    readonly_fields = ["phone"]
    actions = ["credit_now"]

    @admin.display(description=_("invitee's phone"))
    def phone(self, referral: Referral) -> str:
        # The referral keeps only the digest; the invitee's own record shows it masked.
        return referral.invitee.masked_phone if referral.invitee_phone else ""

    def has_credit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.change_referral")

    @admin.action(
        description=_("Credit pending referrals of registered invitees"), permissions=["credit"]
    )
    def credit_now(self, request: HttpRequest, queryset: QuerySet[Referral]) -> None:
        """For a referral left pending because crediting failed at registration."""
        decided = 0
        for referral in queryset.filter(status=ReferralStatus.PENDING).select_related("invitee"):
            result = referral_credit(invitee=referral.invitee)
            if result is not None and result.status != ReferralStatus.PENDING:
                decided += 1
        self.message_user(
            request,
            _("%(count)d referrals credited or rejected.") % {"count": decided},
            messages.SUCCESS,
        )


@admin.register(InviteCode)
class InviteCodeAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("member",)
    list_display = ["code", "member", "created_at"]
    search_fields = ["=code", "=member__id"]
    list_select_related = ["member"]
