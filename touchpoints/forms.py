from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import Tag
from scrm.org.models import Staff, Store
from touchpoints.models import (
    Channel,
    ImportKind,
    ImportMapping,
    ImportSource,
    QrCode,
    Touchpoint,
)


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Data"), choices=ImportKind.choices)
    source = forms.ChoiceField(label=_("Source"), choices=ImportSource.choices)
    file = forms.FileField(label=_("File (CSV or XLSX)"))


class MappingForm(forms.Form):
    """One text field per our field: the source's headers, separated by commas."""

    def __init__(self, *args: Any, mapping: ImportMapping, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mapping = mapping
        for field, aliases in mapping.columns.items():
            self.fields[field] = forms.CharField(
                label=field,
                required=False,
                max_length=500,
                initial="，".join(aliases),
                help_text=_("Column headers, separated by commas."),
            )

    def columns(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for field in self.mapping.columns:
            raw = self.cleaned_data.get(field, "").replace("，", ",")
            aliases = [a.strip() for a in raw.split(",") if a.strip()]
            if aliases:
                result[field] = aliases
        return result


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["kind", "name", "code", "active"]


class TouchpointForm(forms.ModelForm):
    class Meta:
        model = Touchpoint
        fields = ["channel", "kind", "name", "code", "store", "responsible", "active"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["store"].queryset = Store.objects.for_user(user)  # type: ignore[attr-defined]
        self.fields["responsible"].queryset = (  # type: ignore[attr-defined]
            Staff.objects.for_user(user).filter(is_active=True).exclude(role="guide")
        )
        self.fields["channel"].queryset = Channel.objects.filter(active=True)  # type: ignore[attr-defined]
        if not getattr(user, "is_hq", False):
            self.fields["store"].required = True
        if self.instance.pk is not None:
            self.fields["kind"].disabled = True


class QrCodeForm(forms.ModelForm):
    class Meta:
        model = QrCode
        fields = ["tags", "backup_guide", "welcome_message", "valid_from", "valid_until"]
        widgets = {
            "tags": forms.SelectMultiple(attrs={"size": 8}),
            "valid_from": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "valid_until": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "welcome_message": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, guides: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tags"].queryset = Tag.objects.filter(active=True).select_related("group")  # type: ignore[attr-defined]
        self.fields["backup_guide"].queryset = guides  # type: ignore[attr-defined]
        self.fields["valid_from"].input_formats = ["%Y-%m-%dT%H:%M"]  # type: ignore[attr-defined]
        self.fields["valid_until"].input_formats = ["%Y-%m-%dT%H:%M"]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", _("The end must come after the start."))
        return data


class RotationForm(forms.Form):
    guide = forms.ModelChoiceField(queryset=Staff.objects.none(), required=False, label=_("Guide"))
    daily_cap = forms.IntegerField(
        required=False, min_value=1, max_value=10_000, label=_("Daily cap")
    )

    def __init__(self, *args: Any, guides: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["guide"].queryset = guides  # type: ignore[attr-defined]


RotationFormSet = forms.formset_factory(RotationForm, extra=0, max_num=50)


class EventClientForm(forms.Form):
    name = forms.CharField(max_length=60, label=_("Name"))
    channel = forms.ModelChoiceField(queryset=Channel.objects.all(), label=_("Channel"))
