"""The broadcast composer: a material from the library, or a text written here, with
per-recipient variables, to a segment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from campaigns.models import GUIDE_POSTED, GatewayKind, Material, MaterialKind
from campaigns.selectors import materials_for_user
from campaigns.services.content import VARIABLES, content_check
from campaigns.services.planning import MAX_HOLDOUT_PERCENT
from members.models import Segment
from members.services.errors import MemberError
from scrm.org.models import Store

TEXT_ONLY_CHANNELS = (GatewayKind.SMS, GatewayKind.SUBSCRIPTION)


def holdout_percent_field(help_text: Any) -> forms.IntegerField:
    """The control group's share, 0–50 % (empty: 0)."""
    return forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_HOLDOUT_PERCENT,
        initial=0,
        label=_("Control group (%)"),
        help_text=help_text,
        error_messages={
            "min_value": _("The control group cannot be below %(limit_value)s %%."),
            "max_value": _("The control group is at most %(limit_value)s %% of the audience."),
            "invalid": _("Give the control group as a whole percentage, from 0 to 50."),
        },
    )


def cost_field() -> forms.DecimalField:
    """What it cost, in yuan to the fen (empty: 0)."""
    return forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        initial=Decimal("0"),
        label=_("Cost (yuan)"),
        help_text=_("What it cost — message fees, coupons, design — to show its ROI."),
        error_messages={
            "min_value": _("The cost cannot be negative."),
            "invalid": _("Give the cost as an amount in yuan, such as 1200 or 99.50."),
            "max_digits": _("The cost is too large."),
            "max_whole_digits": _("The cost is too large."),
            "max_decimal_places": _("The cost is in yuan to the fen: at most 2 decimals."),
        },
    )


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("Name"))
    channel = forms.ChoiceField(choices=GatewayKind.choices, label=_("Channel"))
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        label=_("Audience"),
        help_text=_("Not needed for customer groups and Moments: the guides post those."),
    )
    material = forms.ModelChoiceField(
        queryset=Material.objects.none(),
        required=False,
        label=_("Content from the material library"),
        help_text=_("Or leave it empty and write a text below."),
    )
    title = forms.CharField(max_length=100, label=_("Title"), required=False)
    body = forms.CharField(
        required=False,
        max_length=2000,
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=format_lazy(
            _("Variables: {names}"), names=", ".join("{" + v + "}" for v in VARIABLES)
        ),
    )
    scheduled_at = forms.DateTimeField(
        required=False,
        label=_("Send at (empty: when approved)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    store = forms.ModelChoiceField(
        queryset=Store.objects.none(), required=False, label=_("Store (empty: head office)")
    )
    holdout_percent = holdout_percent_field(
        help_text=_(
            "A share of the audience, drawn at random, is not sent the message: their "
            "purchases show what would have happened anyway (uplift). 0: no control group. "
            "Not for customer groups and Moments."
        )
    )
    cost = cost_field()

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if getattr(user, "is_hq", False):
            segments = Segment.objects.filter(archived=False)
        else:
            # Head office's segments and their stores' own; the store's broadcast then
            # reaches only that store's members.
            segments = Segment.objects.filter(
                Q(store__isnull=True) | Q(store__in=Store.objects.for_user(user)), archived=False
            )
        self.fields["segment"].queryset = segments.order_by("name")  # type: ignore[attr-defined]
        self.fields["store"].queryset = Store.objects.for_user(user)  # type: ignore[attr-defined]
        self.fields["material"].queryset = materials_for_user(user).order_by("-created_at")  # type: ignore[attr-defined]
        if not getattr(user, "is_hq", False):
            self.fields["store"].required = True

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"].strip()
        try:
            content_check(body)
        except MemberError as exc:
            raise forms.ValidationError(str(exc.message)) from exc
        return body

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("channel") in GUIDE_POSTED:
            data["segment"] = None  # the guides' own customers, through their posts
            if data.get("holdout_percent"):
                self.add_error(
                    "holdout_percent",
                    _(
                        "Customer groups and Moments have no control group: guides post "
                        "them for all their customers. Set it to 0."
                    ),
                )
        elif not data.get("segment") and "segment" not in self.errors:
            self.add_error("segment", _("Choose who receives it."))
        material = data.get("material")
        if material is None:
            if not data.get("title"):
                self.add_error("title", _("Give the message a title, or pick a material."))
            if not data.get("body") and "body" not in self.errors:
                self.add_error("body", _("Write the message, or pick a material."))
        elif material.kind != MaterialKind.TEXT and data.get("channel") in TEXT_ONLY_CHANNELS:
            self.add_error(
                "material",
                _("SMS and subscription messages carry text only: pick a text material."),
            )
        elif not material.body and data.get("channel") in TEXT_ONLY_CHANNELS:
            self.add_error("material", _("This material has no text to send."))
        return data

    def clean_holdout_percent(self) -> int:
        value = self.cleaned_data.get("holdout_percent")
        return 0 if value is None else int(value)

    def clean_cost(self) -> Decimal:
        value = self.cleaned_data.get("cost")
        return Decimal("0") if value is None else value

    def clean_scheduled_at(self) -> Any:
        value = self.cleaned_data.get("scheduled_at")
        if value is not None and value < timezone.now():
            raise forms.ValidationError(_("The send time is in the past."))
        return value
