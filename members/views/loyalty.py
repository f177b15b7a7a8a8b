"""HQ pages for step 4 (保忠诚): the loyalty settings, and per-member points, tier and
coupon actions. Settings are head-office work; every save is audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from members import selectors
from members.forms.loyalty import (
    BonusPeriodForm,
    CouponTemplateForm,
    EarnRuleForm,
    PointsAdjustForm,
    RevokeForm,
    RewardForm,
    TierForm,
    TierManualForm,
)
from members.models import BonusPeriod, Coupon, CouponTemplate, EarnRule, Member, Reward, Tier
from members.services.coupons import coupon_revoke
from members.services.errors import MemberError
from members.services.loyalty_settings import loyalty_setting_save
from members.services.points import points_adjust
from members.services.tiers import tier_set_manual
from scrm.core.access import head_office_required
from scrm.core.exports import table_download, wanted_format, wanted_table

head_office_only = head_office_required(
    gettext_lazy("Only head-office staff can change loyalty settings and points.")
)

# What each settings page edits: model, form, title.
SETTINGS: dict[str, tuple[type[models.Model], type[forms.ModelForm], Any]] = {
    "tier": (Tier, TierForm, gettext_lazy("tier")),
    "earn-rule": (EarnRule, EarnRuleForm, gettext_lazy("earn rule")),
    "bonus-period": (BonusPeriod, BonusPeriodForm, gettext_lazy("bonus period")),
    "coupon-template": (CouponTemplate, CouponTemplateForm, gettext_lazy("coupon template")),
    "reward": (Reward, RewardForm, gettext_lazy("reward")),
}


def _days(days: int) -> str:
    return _("%(days)s days") % {"days": days}


def _on_off(active: bool, on: str = "active") -> str:
    return _(on) if active else _("off")


def _benefits(tier: Tier) -> str:
    parts = []
    if tier.discount_rate < 1:
        parts.append(_("discount ×%(rate)s") % {"rate": tier.discount_rate})
    if tier.points_multiplier != 1:
        parts.append(_("points ×%(m)s") % {"m": tier.points_multiplier})
    if tier.free_delivery:
        parts.append(_("free delivery"))
    if tier.priority_service:
        parts.append(_("priority service"))
    if tier.birthday_coupon:
        parts.append(f"{_('birthday gift')}: {tier.birthday_coupon.name}")
    return " ".join(parts)


def _earn_points(rule: EarnRule) -> str:
    parts = [str(rule.points)] if rule.points else []
    if rule.points_per_yuan:
        parts.append(_("%(p)s per yuan") % {"p": rule.points_per_yuan})
    return " ".join(parts)


def _coupon_kind(template: CouponTemplate) -> str:
    text = template.get_kind_display()
    if template.amount_off:
        text += f" ¥{template.amount_off}"
    if template.percent_off:
        text += f" {template.percent_off}%"
    if template.gift:
        text += f" {template.gift}"
    return text


# The settings page's tables as downloads, by `?table=` (the tiers are the page's first).
LOYALTY_TABLES: dict[str, Any] = {
    "": lambda: (
        "tiers",
        [_("Rank"), _("Name"), _("To enter"), _("To keep"), _("Valid"), _("Grace")]
        + [_("Benefits")],
        (
            [
                tier.rank,
                tier.name,
                _("%(points)s in %(days)s days")
                % {"points": tier.threshold, "days": tier.window_days},
                tier.retain_threshold,
                _days(tier.valid_days),
                _days(tier.grace_days),
                _benefits(tier),
            ]
            for tier in Tier.objects.select_related("birthday_coupon").order_by("rank")
        ),
    ),
    "earn-rules": lambda: (
        "earn-rules",
        [_("Event"), _("Account"), _("Points"), _("Daily cap"), _("Monthly cap"), _("Valid")]
        + [_("Status")],
        (
            [
                rule.get_event_display(),
                rule.get_account_display(),
                _earn_points(rule),
                rule.daily_cap or "",
                rule.monthly_cap or "",
                _days(rule.valid_days) if rule.valid_days else _("never expire"),
                _on_off(rule.active),
            ]
            for rule in EarnRule.objects.order_by("event")
        ),
    ),
    "bonus-periods": lambda: (
        "bonus-periods",
        [_("Name"), _("From"), _("To"), _("Multiplier"), _("Events")],
        (
            [
                bonus.name,
                bonus.starts_at,
                bonus.ends_at,
                f"×{bonus.multiplier}",
                "、".join(bonus.events) or _("all events"),
            ]
            for bonus in BonusPeriod.objects.order_by("-starts_at")
        ),
    ),
    "coupon-templates": lambda: (
        "coupon-templates",
        [_("Name"), _("Kind"), _("Valid"), _("Issued"), capfirst(_("total issued"))]
        + [_("Status")],
        (
            [
                template.name,
                _coupon_kind(template),
                _days(template.valid_days),
                template.issued_count,
                template.total_limit or "",
                _on_off(template.active),
            ]
            for template in CouponTemplate.objects.order_by("-active", "name")
        ),
    ),
    "rewards": lambda: (
        "rewards",
        [_("Reward"), _("Points"), _("Stock"), _("Per member"), _("Lowest tier"), _("Until")]
        + [_("Status")],
        (
            [
                reward.name,
                reward.points_price,
                reward.stock,
                reward.per_member_limit or "",
                reward.min_tier.name if reward.min_tier else "",
                timezone.localdate(reward.available_until) if reward.available_until else "",
                _on_off(reward.active, on="on sale"),
            ]
            for reward in Reward.objects.select_related("min_tier").order_by(
                "-active", "points_price"
            )
        ),
    ),
}


@head_office_only
def settings_overview(request: HttpRequest) -> HttpResponse:
    if file_format := wanted_format(request):
        table = LOYALTY_TABLES.get(wanted_table(request))
        if table is None:
            raise Http404
        filename, header, rows = table()
        return table_download(
            file_format=file_format, filename=f"loyalty-{filename}", header=header, rows=rows
        )
    return render(
        request,
        "members/hq/loyalty/settings.html",
        {
            "tiers": Tier.objects.select_related("birthday_coupon").order_by("rank"),
            "rules": EarnRule.objects.order_by("event"),
            "bonuses": BonusPeriod.objects.order_by("-starts_at")[:20],
            "templates": CouponTemplate.objects.order_by("-active", "name"),
            "rewards": Reward.objects.select_related("min_tier", "coupon_template").order_by(
                "-active", "points_price"
            ),
            "liability": selectors.points_liability(user=request.user),
        },
    )


@head_office_only
@require_http_methods(["GET", "POST"])
def settings_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    if kind not in SETTINGS:
        raise Http404
    model, form_class, title = SETTINGS[kind]
    instance = None
    if pk is not None:
        instance = model._default_manager.filter(pk=pk).first()
        if instance is None:
            raise Http404
    extra: dict[str, Any] = {"user": request.user} if form_class is CouponTemplateForm else {}
    form = form_class(request.POST or None, instance=instance, **extra)
    if request.method == "POST" and form.is_valid():
        saved = loyalty_setting_save(form=form, kind=kind, actor=request.user)
        messages.success(request, _("Saved %(what)s “%(name)s”.") % {"what": title, "name": saved})
        return redirect("hq:loyalty")
    return render(
        request,
        "members/hq/loyalty/edit.html",
        {"form": form, "title": title, "instance": instance},
    )


def _member(request: HttpRequest, member_id: int) -> Member:
    member = Member.objects.for_user(request.user).filter(pk=member_id).first()
    if member is None:
        raise Http404
    return member


@head_office_only
@require_http_methods(["GET", "POST"])
def points_adjust_view(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member(request, member_id)
    form = PointsAdjustForm(request.POST or None)
    nonce = _nonce(request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = points_adjust(
                member_id=member.pk,
                kind=data["kind"],
                amount=data["amount"],
                reason=data["reason"],
                actor=request.user,
                external_id=f"hq:{request.user.pk}:{nonce}",
                expires_at=form.expires_at(),
            )
        except MemberError as exc:
            form.add_error(None, str(exc.message))
        else:
            if result.duplicate:
                messages.info(request, _("This adjustment was already saved."))
            else:
                messages.success(
                    request,
                    _("Adjusted by %(points)+d; the balance is now %(balance)s.")
                    % {"points": result.amount, "balance": result.balance},
                )
            return redirect("hq:member-profile", member_id=member.pk)
    return render(
        request,
        "members/hq/loyalty/member_action.html",
        {
            "form": form,
            "member": member,
            "title": _("Adjust points"),
            "nonce": nonce,
        },
    )


def _nonce(request: HttpRequest) -> str:
    """A value per form view: resubmitting the same form (a double click, a reload) is
    the same adjustment, applied once."""
    import secrets

    return request.POST.get("nonce") or secrets.token_hex(8)


@head_office_only
@require_http_methods(["GET", "POST"])
def tier_manual_view(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member(request, member_id)
    form = TierManualForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tier_set_manual(
                member_id=member.pk,
                tier=form.cleaned_data["tier"],
                reason=form.cleaned_data["reason"],
                until=form.until_end(),
                actor=request.user,
            )
        except MemberError as exc:
            form.add_error(None, str(exc.message))
        else:
            messages.success(
                request, _("Tier set until %(day)s.") % {"day": form.cleaned_data["until"]}
            )
            return redirect("hq:member-profile", member_id=member.pk)
    return render(
        request,
        "members/hq/loyalty/member_action.html",
        {"form": form, "member": member, "title": _("Set tier by hand")},
    )


@head_office_only
@require_http_methods(["GET", "POST"])
def coupon_revoke_view(request: HttpRequest, coupon_id: int) -> HttpResponse:
    coupon: Coupon | None = (
        Coupon.objects.for_user(request.user)
        .select_related("template", "member")
        .filter(pk=coupon_id)
        .first()
    )
    if coupon is None:
        raise Http404
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            coupon_revoke(
                coupon_id=coupon.pk, reason=form.cleaned_data["reason"], actor=request.user
            )
        except MemberError as exc:
            form.add_error(None, str(exc.message))
        else:
            messages.success(request, _("Coupon %(code)s revoked.") % {"code": coupon.code})
            return redirect("hq:member-profile", member_id=coupon.member_id)
    return render(
        request,
        "members/hq/loyalty/member_action.html",
        {
            "form": form,
            "member": coupon.member,
            "title": _("Revoke coupon %(code)s") % {"code": coupon.code},
        },
    )
