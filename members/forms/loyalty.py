"""HQ forms for step 4 (loyalty): tiers, earn rules, bonus periods, coupon templates,
rewards, and the per-member actions (adjust points, set a tier by hand, revoke)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import (
    BonusPeriod,
    CouponTemplate,
    EarnEvent,
    EarnRule,
    PointsKind,
    Reward,
    Tier,
)


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = [
            "name",
            "rank",
            "threshold",
            "window_days",
            "valid_days",
            "retain_threshold",
            "grace_days",
            "points_multiplier",
            "discount_rate",
            "free_delivery",
            "birthday_coupon",
            "priority_service",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rank, threshold = data.get("rank"), data.get("threshold")
        if rank is None or threshold is None:
            return data
        others = Tier.objects.exclude(pk=self.instance.pk)
        lower = others.filter(rank__lt=rank).order_by("-rank").first()
        higher = others.filter(rank__gt=rank).order_by("rank").first()
        if lower is not None and threshold <= lower.threshold:
            self.add_error(
                "threshold",
                _("A higher tier needs more growth value than %(tier)s (%(points)s).")
                % {"tier": lower.name, "points": lower.threshold},
            )
        if higher is not None and threshold >= higher.threshold:
            self.add_error(
                "threshold",
                _("A lower tier needs less growth value than %(tier)s (%(points)s).")
                % {"tier": higher.name, "points": higher.threshold},
            )
        retain = data.get("retain_threshold")
        if retain is not None and retain > threshold:
            self.add_error(
                "retain_threshold", _("Keeping a tier cannot need more than entering it.")
            )
        return data


class EarnRuleForm(forms.ModelForm):
    class Meta:
        model = EarnRule
        fields = [
            "event",
            "account",
            "points",
            "points_per_yuan",
            "daily_cap",
            "monthly_cap",
            "valid_days",
            "active",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("points") and not data.get("points_per_yuan"):
            self.add_error("points", _("Give points per event, per yuan, or both."))
        if data.get("event") == EarnEvent.PURCHASE and data.get("account") != PointsKind.GROWTH:
            self.add_error("account", _("Purchases earn growth value."))
        daily, monthly = data.get("daily_cap"), data.get("monthly_cap")
        if daily is not None and monthly is not None and monthly < daily:
            self.add_error("monthly_cap", _("The monthly cap cannot be below the daily cap."))
        return data


class BonusPeriodForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=EarnEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event."),
    )

    class Meta:
        model = BonusPeriod
        fields = ["name", "starts_at", "ends_at", "multiplier", "events"]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The end must be after the start."))
        multiplier = data.get("multiplier")
        if multiplier is not None and not 0 < multiplier <= 10:
            self.add_error("multiplier", _("Use a multiplier above 0 and at most 10."))
        return data


class CouponTemplateForm(forms.ModelForm):
    class Meta:
        model = CouponTemplate
        fields = [
            "name",
            "kind",
            "amount_off",
            "percent_off",
            "gift",
            "min_spend",
            "valid_days",
            "per_member_limit",
            "total_limit",
            "stores",
            "active",
        ]
        widgets = {"stores": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from scrm.org.models import Store
        from scrm.org.scoping import for_user

        self.fields["stores"].queryset = for_user(Store.objects.all(), user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == "amount_off" and not data.get("amount_off"):
            self.add_error("amount_off", _("Give the amount off."))
        if kind == "percent_off" and not data.get("percent_off"):
            self.add_error("percent_off", _("Give the percent off (1–99)."))
        if kind == "percent_off" and data.get("percent_off") and data["percent_off"] >= 100:
            self.add_error("percent_off", _("Give the percent off (1–99)."))
        if kind == "gift" and not data.get("gift"):
            self.add_error("gift", _("Name the gift."))
        total = data.get("total_limit")
        if total is not None and self.instance.pk and total < self.instance.issued_count:
            self.add_error(
                "total_limit",
                _("%(issued)s have been issued already.") % {"issued": self.instance.issued_count},
            )
        return data


class RewardForm(forms.ModelForm):
    class Meta:
        model = Reward
        fields = [
            "name",
            "kind",
            "coupon_template",
            "gift",
            "points_price",
            "stock",
            "per_member_limit",
            "min_tier",
            "available_from",
            "available_until",
            "active",
        ]
        widgets = {
            "available_from": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "available_until": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == "coupon" and not data.get("coupon_template"):
            self.add_error("coupon_template", _("Choose the coupon this reward gives."))
        if data.get("kind") == "gift" and not data.get("gift"):
            self.add_error("gift", _("Name the gift."))
        if data.get("stock") is not None and data["stock"] < 0:
            self.add_error("stock", _("Stock cannot be negative."))
        start, end = data.get("available_from"), data.get("available_until")
        if start and end and end <= start:
            self.add_error("available_until", _("The end must be after the start."))
        return data


class PointsAdjustForm(forms.Form):
    kind = forms.ChoiceField(label=_("account"), choices=PointsKind.choices)
    amount = forms.IntegerField(
        label=_("points"),
        help_text=_("Positive adds, negative takes."),
        min_value=-1_000_000,
        max_value=1_000_000,
    )
    reason = forms.CharField(label=_("reason"), max_length=200)
    valid_days = forms.IntegerField(
        label=_("added points valid for (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=_("Empty: the points never expire."),
    )

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("Enter a whole number of points, not 0."))
        return int(amount)

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("valid_days")
        return timezone.now() + timedelta(days=days) if days else None


class TierManualForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("tier"), queryset=Tier.objects.order_by("rank"))
    until = forms.DateField(
        label=_("until"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The earned tier shows again after this day."),
    )
    reason = forms.CharField(label=_("reason"), max_length=200)

    def until_end(self) -> datetime:
        day = self.cleaned_data["until"]
        return timezone.make_aware(datetime.combine(day, time.max))


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=200)
