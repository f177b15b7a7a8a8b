"""Forms for guides' pages (/m/) and their managers' (/hq/guides/)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import LifecycleStage, NoteKind, Segment, Tag, TaskOutcome, Tier
from members.selectors.guides import CustomerFilters, segment_choices, tag_choices
from scrm.org.models import Staff


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=50, label=_("Search"))
    tag = forms.ModelChoiceField(queryset=Tag.objects.none(), required=False, label=_("Tag"))
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(), required=False, label=_("Segment")
    )
    stage = forms.ChoiceField(
        choices=[("", _("Any stage")), *LifecycleStage.choices], required=False, label=_("Stage")
    )
    tier = forms.ModelChoiceField(
        queryset=Tier.objects.order_by("rank"), required=False, label=_("Tier")
    )
    due = forms.BooleanField(required=False, label=_("Follow-up due"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tag"].queryset = tag_choices()  # type: ignore[attr-defined]
        self.fields["segment"].queryset = segment_choices(user=user)  # type: ignore[attr-defined]
        self.fields["tag"].empty_label = _("Any tag")  # type: ignore[attr-defined]
        self.fields["segment"].empty_label = _("Any segment")  # type: ignore[attr-defined]
        self.fields["tier"].empty_label = _("Any tier")  # type: ignore[attr-defined]

    def filters(self) -> CustomerFilters:
        """The valid filters; a bad value (an unknown tag, another store's segment) is
        reported on the form and left out rather than widening or emptying the list."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return CustomerFilters(
            search=(data.get("q") or "").strip(),
            tag_id=data["tag"].pk if data.get("tag") else None,
            segment_id=data["segment"].pk if data.get("segment") else None,
            stage=data.get("stage") or "",
            tier_id=data["tier"].pk if data.get("tier") else None,
            due=bool(data.get("due")),
        )

    @property
    def active_count(self) -> int:
        data = getattr(self, "cleaned_data", {})
        return sum(1 for key in ("tag", "segment", "stage", "tier", "due") if data.get(key))


class NoteForm(forms.Form):
    kind = forms.ChoiceField(choices=NoteKind.choices, initial=NoteKind.NOTE, label=_("Kind"))
    body = forms.CharField(
        max_length=1000,
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TaskDoneForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=TaskOutcome.choices, widget=forms.RadioSelect, label=_("Outcome")
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class TransferForm(forms.Form):
    to_guide = forms.ModelChoiceField(queryset=Staff.objects.none(), label=_("New guide"))
    note = forms.CharField(max_length=200, required=False, label=_("Reason"))

    def __init__(self, *args: Any, guides: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_guide"].queryset = guides  # type: ignore[attr-defined]


class DepartureForm(forms.Form):
    MODES = (
        ("spread", _("Spread evenly over the chosen guides")),
        ("pool", _("Back to the store pool")),
    )
    mode = forms.ChoiceField(choices=MODES, initial="spread", widget=forms.RadioSelect)
    to_guides = forms.ModelMultipleChoiceField(
        queryset=Staff.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Guides who take over"),
    )
    note = forms.CharField(max_length=200, required=False, label=_("Note"))

    def __init__(self, *args: Any, guides: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_guides"].queryset = guides  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "spread" and not data.get("to_guides"):
            self.add_error("to_guides", _("Choose at least one guide, or send them to the pool."))
        if data.get("mode") == "pool":
            data["to_guides"] = []
        return data


class HqTaskForm(forms.Form):
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.filter(archived=False).order_by("name"),
        label=_("Customers of the segment"),
    )
    title = forms.CharField(max_length=200, label=_("Task"))
    detail = forms.CharField(
        max_length=500, required=False, label=_("Detail"), widget=forms.Textarea(attrs={"rows": 3})
    )
    due_on = forms.DateField(label=_("Due"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["due_on"].initial = timezone.localdate() + timedelta(days=3)
