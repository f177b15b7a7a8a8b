"""The broadcast composer: a text message with per-recipient variables to a segment."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from campaigns.models import GatewayKind
from campaigns.services.content import VARIABLES, content_check
from members.models import Segment
from members.services.errors import MemberError
from scrm.org.models import Store


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("Name"))
    channel = forms.ChoiceField(choices=GatewayKind.choices, label=_("Channel"))
    segment = forms.ModelChoiceField(queryset=Segment.objects.none(), label=_("Audience"))
    title = forms.CharField(max_length=100, label=_("Title"))
    body = forms.CharField(
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
        if not getattr(user, "is_hq", False):
            self.fields["store"].required = True

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        try:
            content_check(body)
        except MemberError as exc:
            raise forms.ValidationError(str(exc.message)) from exc
        return body

    def clean_scheduled_at(self) -> Any:
        value = self.cleaned_data.get("scheduled_at")
        if value is not None and value < timezone.now():
            raise forms.ValidationError(_("The send time is in the past."))
        return value
