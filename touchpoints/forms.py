from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from touchpoints.models import ImportKind, ImportMapping, ImportSource


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
