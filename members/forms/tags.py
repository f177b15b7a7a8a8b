"""HQ forms for tags (step 3) and segments (step 6)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import Segment, SegmentKind, Tag, TagGroup
from members.segments.evaluate import check_rules
from members.segments.rules import RuleError
from scrm.org.models import Store

# An uploaded list for bulk tagging: phones or member ids, one per line (or a CSV whose
# first column holds them). Bigger lists belong in an import.
BULK_LIST_MAX_BYTES = 5 * 1024 * 1024
BULK_LIST_MAX_LINES = 100_000


class TagGroupForm(forms.ModelForm):
    class Meta:
        model = TagGroup
        fields = ["name", "choice", "description", "position"]


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["group", "name", "description", "active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        group, name = data.get("group"), data.get("name")
        if group and name:
            clash = Tag.objects.filter(group=group, name=name).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("name", _("The group already has a tag with this name."))
        return data


class MemberTagForm(forms.Form):
    tag = forms.ModelChoiceField(
        queryset=Tag.objects.filter(active=True).select_related("group"), label=_("Tag")
    )


class BulkTagForm(forms.Form):
    ACTIONS = (("add", _("Add the tag")), ("remove", _("Remove the tag")))
    tag = forms.ModelChoiceField(
        queryset=Tag.objects.filter(active=True).select_related("group"), label=_("Tag")
    )
    action = forms.ChoiceField(choices=ACTIONS, initial="add", label=_("Action"))
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(), required=False, label=_("Members of a segment")
    )
    upload = forms.FileField(
        required=False,
        label=_("Or a list of phones or member ids"),
        help_text=_("A .txt or .csv file, one phone or member id per line (first column)."),
    )
    pasted = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=_("Or paste phones or member ids"),
        help_text=_("One per line."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        segments: Any = Segment.objects.for_user(user).filter(archived=False)
        self.fields["segment"].queryset = segments  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        listed = bool(data.get("upload")) or bool((data.get("pasted") or "").strip())
        if bool(data.get("segment")) == listed:
            raise forms.ValidationError(
                _("Choose a segment, or upload or paste a list (one of the two).")
            )
        if not data.get("upload") and (data.get("pasted") or "").strip():
            return self._entries(data, data["pasted"])
        upload = data.get("upload")
        if upload is not None:
            if upload.size > BULK_LIST_MAX_BYTES:
                self.add_error(
                    "upload",
                    _("The list is larger than 5 MB: import it as a member file instead."),
                )
                return data
            raw = upload.read()
            if not raw.strip():
                self.add_error("upload", _("The file is empty."))
                return data
            if b"\x00" in raw[:4096]:
                self.add_error("upload", _("This is not a text file."))
                return data
            for encoding in ("utf-8-sig", "gb18030"):
                try:
                    text = raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
            else:
                self.add_error("upload", _("The file is neither UTF-8 nor GBK text."))
                return data
            return self._entries(data, text, field="upload")
        return data

    def _entries(self, data: dict[str, Any], text: str, field: str = "pasted") -> dict[str, Any]:
        lines = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
        lines = [line for line in lines if line]
        if len(lines) > BULK_LIST_MAX_LINES:
            self.add_error(
                field,
                _("The list has more than %(n)s lines: import it as a member file instead.")
                % {"n": f"{BULK_LIST_MAX_LINES:,}"},
            )
            return data
        data["entries"] = lines
        return data


class SegmentForm(forms.ModelForm):
    rules = forms.CharField(widget=forms.HiddenInput, label=_("Rules"))

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "refresh", "store"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        if self.instance.pk and not self.is_bound:
            self.initial["rules"] = json.dumps(self.instance.rules, ensure_ascii=False)
        stores: Any = Store.objects.for_user(user)
        self.fields["store"].queryset = stores  # type: ignore[attr-defined]
        if getattr(user, "is_hq", False):
            self.fields["store"].help_text = _("Empty: a head-office segment over every store.")
        else:
            self.fields["store"].required = True
            self.fields["store"].help_text = _("Your segment counts members of this store only.")
        if (
            self.instance.pk
            and self.instance.kind == SegmentKind.STATIC
            and self.instance.frozen_at
        ):
            self.fields["kind"].disabled = True
        self.rule_error: RuleError | None = None

    def clean_rules(self) -> Any:
        text = self.cleaned_data["rules"]
        try:
            raw = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("The rules are not valid JSON.")) from None
        try:
            check_rules(raw, user=self.user)
        except RuleError as exc:
            self.rule_error = exc
            raise forms.ValidationError(str(exc)) from None
        return raw

    def save(self, commit: bool = True) -> Segment:
        self.instance.rules = self.cleaned_data["rules"]
        return super().save(commit=commit)


class CutPointsField(forms.CharField):
    """Four rising whole numbers, typed as “30, 90, 180, 365”."""

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = super().to_python(value)
        parts = [p.strip() for p in str(text).replace("，", ",").split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise forms.ValidationError(
                _("Enter four whole numbers separated by commas.")
            ) from None
        if len(numbers) != 4 or any(n < 0 for n in numbers):
            raise forms.ValidationError(_("Enter four whole numbers separated by commas."))
        if numbers != sorted(numbers) or len(set(numbers)) != 4:
            raise forms.ValidationError(_("The four cut points must rise."))
        return numbers

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value


class RfmSettingsForm(forms.ModelForm):
    r_thresholds = CutPointsField(label=_("Recency cut points (days)"))
    f_thresholds = CutPointsField(label=_("Frequency cut points (orders)"))
    m_thresholds = CutPointsField(label=_("Spend cut points (¥)"))

    class Meta:
        from members.models import RfmSettings

        model = RfmSettings
        fields = [
            "window_days",
            "method",
            "r_thresholds",
            "f_thresholds",
            "m_thresholds",
            "high_score",
            "activity_high",
            "growth_high",
        ]

    def clean_window_days(self) -> int:
        days = self.cleaned_data["window_days"]
        if not 1 <= days <= 3650:
            raise forms.ValidationError(_("The window is 1 to 3,650 days."))
        return int(days)

    def clean_high_score(self) -> int:
        score = self.cleaned_data["high_score"]
        if not 1 <= score <= 5:
            raise forms.ValidationError(_("Scores run from 1 to 5."))
        return int(score)


class AutoTagRuleForm(forms.ModelForm):
    rules = forms.CharField(widget=forms.HiddenInput, label=_("Rules"))

    class Meta:
        from members.models import AutoTagRule

        model = AutoTagRule
        fields = ["name", "tag", "remove_when_unmatched", "active"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        tags: Any = Tag.objects.filter(active=True).select_related("group")
        self.fields["tag"].queryset = tags  # type: ignore[attr-defined]
        if self.instance.pk and not self.is_bound:
            self.initial["rules"] = json.dumps(self.instance.rules, ensure_ascii=False)
        self.rule_error: RuleError | None = None

    def clean_rules(self) -> Any:
        try:
            raw = json.loads(self.cleaned_data["rules"])
        except ValueError:
            raise forms.ValidationError(_("The rules are not valid JSON.")) from None
        try:
            check_rules(raw, user=self.user)
        except RuleError as exc:
            self.rule_error = exc
            raise forms.ValidationError(str(exc)) from None
        return raw

    def save(self, commit: bool = True) -> Any:
        self.instance.rules = self.cleaned_data["rules"]
        return super().save(commit=commit)
