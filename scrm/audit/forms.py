from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from scrm.audit.models import AuditAction
from scrm.audit.selectors import AuditFilters
from scrm.audit.tables import TABLE_LABELS


class AuditFilterForm(forms.Form):
    """The viewer's filters, from the query string. A value that cannot be used is an
    error shown beside the filters, never a silently widened list."""

    table = forms.ChoiceField(label=_("Record"), required=False)
    action = forms.ChoiceField(label=_("Action"), required=False)
    actor = forms.CharField(label=pgettext_lazy("audit", "By"), required=False, max_length=150)
    member = forms.IntegerField(
        label=_("Member id"),
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"invalid": _("A member id is a whole number, e.g. 1024.")},
    )
    start = forms.DateField(
        label=pgettext_lazy("date range", "From"),
        required=False,
        error_messages={"invalid": _("Dates are written YYYY-MM-DD.")},
    )
    end = forms.DateField(
        label=pgettext_lazy("date range", "To"),
        required=False,
        error_messages={"invalid": _("Dates are written YYYY-MM-DD.")},
    )
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["table"].choices = [  # type: ignore[attr-defined]
            ("", _("All records")),
            *TABLE_LABELS.items(),
        ]
        self.fields["action"].choices = [  # type: ignore[attr-defined]
            ("", _("All actions")),
            *AuditAction.choices,
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            table=data.get("table") or "",
            action=data.get("action") or "",
            actor=(data.get("actor") or "").strip(),
            member_id=data.get("member"),
            start=data.get("start"),
            end=data.get("end"),
            search=(data.get("q") or "").strip(),
        )
