from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import Channel, LifecycleStage
from scrm.org.selectors import store_choices


class MemberFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label=_("Search"))
    store: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=None, required=False, label=_("Home store"), empty_label=_("All stores")
    )
    stage = forms.ChoiceField(
        required=False,
        label=_("Lifecycle stage"),
        choices=[("", _("All stages")), *LifecycleStage.choices],
    )
    source = forms.ChoiceField(
        required=False,
        label=_("Source channel"),
        choices=[("", _("All sources")), *Channel.choices],
    )
    registered_from = forms.DateField(
        required=False, label=_("Registered from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    registered_to = forms.DateField(
        required=False, label=_("Registered to"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Filter choices are scoped like the list itself: no other store is offered.
        self.fields["store"].queryset = store_choices(user=user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("registered_from"), data.get("registered_to")
        if start and end and start > end:
            raise forms.ValidationError(_("“Registered from” is after “Registered to”."))
        return data

    @staticmethod
    def empty_filters() -> dict[str, Any]:
        return {
            "search": "",
            "store_id": None,
            "stage": "",
            "source": "",
            "registered_from": None,
            "registered_to": None,
        }

    def filters(self) -> dict[str, Any]:
        """The valid filters only: a bad value is reported and ignored, never guessed."""
        data = (
            self.cleaned_data
            if self.is_valid()
            else {
                k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors
            }
        )
        store = data.get("store")
        return {
            "search": (data.get("q") or "").strip(),
            "store_id": store.pk if store else None,
            "stage": data.get("stage") or "",
            "source": data.get("source") or "",
            "registered_from": data.get("registered_from"),
            "registered_to": data.get("registered_to"),
        }


class MergeConfirmForm(forms.Form):
    keep = forms.IntegerField(widget=forms.HiddenInput)
