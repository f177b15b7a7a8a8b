from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.models import (
    PHONE_FIELDS,
    BonusPeriod,
    Coupon,
    CouponLog,
    CouponTemplate,
    EarnRule,
    FollowUpTask,
    GuideAssignment,
    Identity,
    IdentityKind,
    LedgerEntry,
    LifecycleChange,
    LifecycleSettings,
    Member,
    MemberMerge,
    MemberSession,
    MemberTag,
    MergeSuggestion,
    Order,
    OrderLine,
    PointsAccount,
    Redemption,
    RepurchaseCycle,
    Reward,
    RfmSettings,
    SandboxWechatCode,
    Segment,
    ServiceNote,
    Tag,
    TagGroup,
    Tier,
    TierChange,
    can_see_full_phone,
)
from members.phones import normalize_phone, try_normalize_phone
from members.selectors import member_search_q
from members.services.phones import member_set_phone, phone_holder
from scrm.core.admin import ReadOnly as ReadOnlyAdmin
from scrm.core.pii import phone_digests
from scrm.org.admin import ScopedAdmin, ScopedThroughAdmin


class IdentityInline(admin.TabularInline):
    """Read-only: a phone identity holds a digest (shown as its masked last four digits),
    and identities are linked by the identity service (imports, sign-in), which keeps the
    one-person-one-member rules."""

    model = Identity
    extra = 0
    fields = ["kind", "app", "display_value", "source", "created_at"]
    readonly_fields = ["kind", "app", "display_value", "source", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MemberAdminForm(forms.ModelForm):
    new_phone = forms.CharField(
        label=_("Set phone"),
        required=False,
        help_text=_("Any common form; stored encrypted and shown masked. Leave empty to keep."),
    )

    class Meta:
        model = Member
        # The admin passes its own field list; the phone columns are never among them.
        fields = ["name", "gender", "birthday", "city", "home_store", "guide"]

    def clean_new_phone(self) -> str:
        raw = self.cleaned_data.get("new_phone", "")
        if not raw.strip():
            return ""
        phone = normalize_phone(raw)
        if phone_holder(phone=phone, member=self.instance if self.instance.pk else None):
            raise forms.ValidationError(
                _("This phone number belongs to another member record: merge the two instead.")
            )
        return phone


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
        "order_count",
        "created_at",
    ]
    list_filter = ["lifecycle_stage", "gender", "source_channel", "home_store__region"]
    form = MemberAdminForm
    search_fields = ["name", "=identities__value"]
    list_select_related = ["home_store", "guide"]
    raw_id_fields = ["guide", "merged_into"]
    readonly_fields = [
        "order_count",
        "total_spent",
        "first_order_at",
        "last_order_at",
        "lifecycle_stage",
        "stage_changed_at",
        "merged_into",
        "created_at",
        "updated_at",
    ]
    inlines = [IdentityInline]
    show_full_result_count = False

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return PHONE_FIELDS

    def save_model(self, request: HttpRequest, obj: Member, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("new_phone"):
            member_set_phone(member=obj, phone=form.cleaned_data["new_phone"])

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not can_see_full_phone(request.user):
            # Setting a phone takes the permission to see full numbers.
            form.base_fields.pop("new_phone", None)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["masked_phone", *super().get_readonly_fields(request, obj)]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Member], search_term: str
    ) -> tuple[QuerySet[Member], bool]:
        """A phone in any form is found by its digest (phones are not stored readable)."""
        phone = try_normalize_phone(search_term)
        if phone:
            return queryset.filter(member_search_q(search_term)), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Identity)
class IdentityAdmin(ScopedAdmin):
    list_display = ["kind", "app", "display_value", "member", "source", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["=value"]
    raw_id_fields = ["member"]
    list_select_related = ["member"]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        # A phone identity's value is its digest: shown as the masked last four instead.
        if obj is not None and obj.kind == IdentityKind.PHONE:
            return ["value", "hint"]
        return ["hint"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.kind == IdentityKind.PHONE:
            return ["display_value"]
        return []

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Identity], search_term: str
    ) -> tuple[QuerySet[Identity], bool]:
        phone = try_normalize_phone(search_term)
        if phone:
            return queryset.filter(kind=IdentityKind.PHONE, value__in=phone_digests(phone)), False
        return super().get_search_results(request, queryset, search_term)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(ScopedAdmin):
    list_display = [
        "external_id",
        "channel",
        "member",
        "store",
        "guide",
        "paid_at",
        "amount",
        "refunded_amount",
        "status",
    ]
    list_filter = ["channel", "status", "store__region"]
    search_fields = ["=external_id"]
    raw_id_fields = ["member", "guide"]
    list_select_related = ["member", "store", "guide"]
    date_hierarchy = "paid_at"
    inlines = [OrderLineInline]
    # Amounts and refunds change through the order services, which keep member stats right.
    readonly_fields = [
        "amount",
        "refunded_amount",
        "status",
        "member",
        "channel",
        "external_id",
        "paid_at",
    ]


@admin.register(MergeSuggestion)
class MergeSuggestionAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("member_a", "member_b")
    list_display = ["pk", "member_a", "member_b", "reason", "status", "created_at", "decided_by"]
    list_filter = ["status"]


@admin.register(MemberMerge)
class MemberMergeAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("kept",)
    list_display = ["pk", "kept", "dropped", "merged_by", "merged_at", "undone_at"]


@admin.register(LifecycleChange)
class LifecycleChangeAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("member",)
    list_display = ["member", "from_stage", "to_stage", "reason", "changed_at"]
    list_filter = ["to_stage", "reason"]
    raw_id_fields = ["member"]


@admin.register(LifecycleSettings)
class LifecycleSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "loyal_orders", "sleeping_days", "churned_days"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not LifecycleSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MemberSession)
class MemberSessionAdmin(ScopedThroughAdmin, ReadOnlyAdmin):
    scope_through = ("member",)
    list_display = ["pk", "member", "app", "created_at", "expires_at", "revoked_at"]
    exclude = ["refresh_token_hash"]


@admin.register(SandboxWechatCode)
class SandboxWechatCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "kind", "openid", "unionid", "phone", "used_at"]
    list_filter = ["kind"]


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "rank",
        "name",
        "threshold",
        "window_days",
        "valid_days",
        "retain_threshold",
        "grace_days",
        "points_multiplier",
        "discount_rate",
    ]
    ordering = ["rank"]


@admin.register(EarnRule)
class EarnRuleAdmin(admin.ModelAdmin):
    list_display = [
        "event",
        "account",
        "points",
        "points_per_yuan",
        "daily_cap",
        "monthly_cap",
        "valid_days",
        "active",
    ]
    list_editable = ["active"]


@admin.register(BonusPeriod)
class BonusPeriodAdmin(admin.ModelAdmin):
    list_display = ["name", "starts_at", "ends_at", "multiplier", "events"]


# The ledger changes only through the points services: the admin shows it, never edits it.
@admin.register(PointsAccount)
class PointsAccountAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["member", "kind", "balance", "updated_at"]
    list_filter = ["kind"]
    raw_id_fields = ["member"]
    search_fields = ["=member__id"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "balance_after", "source", "reason"]
    list_filter = ["kind", "account__kind"]
    search_fields = ["=external_id", "=account__member__id"]
    list_select_related = ["account"]


@admin.register(TierChange)
class TierChangeAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["changed_at", "member", "kind", "from_tier", "to_tier", "growth", "reason"]
    list_filter = ["kind", "to_tier"]
    raw_id_fields = ["member"]


class CouponLogInline(admin.TabularInline):
    model = CouponLog
    extra = 0
    can_delete = False
    readonly_fields = ["action", "note", "actor", "at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "amount_off",
        "percent_off",
        "valid_days",
        "issued_count",
        "total_limit",
        "active",
    ]
    list_filter = ["kind", "active"]
    readonly_fields = ["issued_count"]
    filter_horizontal = ["stores"]


@admin.register(Coupon)
class CouponAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["code", "template", "member", "status", "issued_at", "valid_until", "source"]
    list_filter = ["status", "template"]
    search_fields = ["=code", "=member__id"]
    inlines = [CouponLogInline]


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "points_price",
        "stock",
        "per_member_limit",
        "min_tier",
        "available_until",
        "active",
    ]
    list_filter = ["kind", "active"]


@admin.register(Redemption)
class RedemptionAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "member", "reward", "points", "status", "coupon"]
    list_filter = ["status", "reward"]
    raw_id_fields = ["member"]


# --- tags, segments, RFM: managed on the HQ pages; the admin shows them for support ----------


@admin.register(TagGroup)
class TagGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "choice", "position"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "active"]
    list_filter = ["group", "active"]
    search_fields = ["name"]


# Member tags change through the tag services (logged); the admin shows them only.
@admin.register(MemberTag)
class MemberTagAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["member", "tag", "source", "added_by", "added_at"]
    list_filter = ["source", "tag__group"]
    raw_id_fields = ["member"]
    search_fields = ["=member__id"]
    list_select_related = ["tag", "tag__group", "added_by"]


@admin.register(Segment)
class SegmentAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["name", "kind", "size", "sized_at", "store", "archived"]
    list_filter = ["kind", "archived"]
    search_fields = ["name"]


@admin.register(RfmSettings)
class RfmSettingsAdmin(ReadOnlyAdmin):
    list_display = ["window_days", "method", "high_score", "scored_at", "window_start"]


@admin.register(RepurchaseCycle)
class RepurchaseCycleAdmin(admin.ModelAdmin):
    """Editable: HQ says how long a product or a category lasts; repurchase reminders
    fall due that many days after the purchase."""

    list_display = ["category", "sku", "days"]
    search_fields = ["category", "sku"]


@admin.register(GuideAssignment)
class GuideAssignmentAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["member", "from_guide", "to_guide", "reason", "actor", "created_at"]
    list_filter = ["reason"]
    raw_id_fields = ["member"]


@admin.register(FollowUpTask)
class FollowUpTaskAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["member", "guide", "kind", "due_on", "status", "outcome"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["member"]


@admin.register(ServiceNote)
class ServiceNoteAdmin(ScopedAdmin, ReadOnlyAdmin):
    list_display = ["member", "author", "kind", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["member"]
