"""The material library's form (素材库): one form for the four kinds, each with the fields
it needs; the text's variables are checked before anything is saved."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.models import Material, MaterialKind
from campaigns.services.content import VARIABLES, content_check
from members.services.errors import MemberError
from scrm.org.models import Store

# A page inside the mini-program: path segments, then an optional query; no scheme, no
# leading slash, no fragment, no spaces.
_PAGE_PATH = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*(?:\?[^\s#]*)?")

# Which optional fields each kind keeps; the others are emptied when it is saved.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    MaterialKind.TEXT: ("body",),
    MaterialKind.IMAGE: ("body", "image_url"),
    MaterialKind.LINK: ("body", "image_url", "link_url"),
    MaterialKind.MINI_PROGRAM: ("body", "image_url", "mini_program_path"),
}
_KIND_SPECIFIC = ("body", "image_url", "link_url", "mini_program_path")


def body_errors(body: str) -> str | None:
    """Why `body` cannot be sent, or None."""
    try:
        content_check(body)
    except MemberError as exc:
        return str(exc.message)
    return None


def _formfield(field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """An address typed without a scheme is taken as https://."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class MaterialForm(forms.ModelForm):
    class Meta:
        model = Material
        formfield_callback = _formfield
        fields = [
            "kind",
            "title",
            "body",
            "image_url",
            "link_url",
            "mini_program_path",
            "quick_reply",
            "store",
        ]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 5, "style": "width:100%"}),
            "quick_reply": forms.CheckboxInput(attrs={"style": "width:auto"}),
            "image_url": forms.URLInput(attrs={"placeholder": "https://"}),
            "link_url": forms.URLInput(attrs={"placeholder": "https://"}),
            "mini_program_path": forms.TextInput(attrs={"placeholder": "pages/x/index?y=1"}),
        }
        help_texts = {
            "title": _("Shown in the library; the card's title for link and mini-program cards."),
            "body": format_lazy(
                _("Variables: {names}"), names=", ".join("{" + v + "}" for v in VARIABLES)
            ),
            "image_url": _(
                "An https:// address. Needed for an image and a mini-program card (its "
                "cover); a link card's thumbnail."
            ),
            "link_url": _("The https:// page the card opens."),
            "mini_program_path": _("A page inside the mini-program, such as pages/x/index?y=1."),
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        store = self.fields["store"]
        store.queryset = Store.objects.for_user(user)  # type: ignore[attr-defined]
        if getattr(user, "is_hq", False):
            store.empty_label = gettext("Head office (every store)")  # type: ignore[attr-defined]
            store.help_text = _("Empty: head office's, offered to every store.")
        else:
            store.required = True
        # Which kinds use a field, for the page to show only what the chosen kind needs.
        for name in _KIND_SPECIFIC:
            kinds = [kind for kind, used in KIND_FIELDS.items() if name in used]
            self.fields[name].widget.attrs["data-kinds"] = " ".join(kinds)

    def clean_title(self) -> str:
        title: str = self.cleaned_data["title"].strip()
        if "{" in title or "}" in title:
            raise forms.ValidationError(
                _("Variables work in the text only: the title is sent as it is.")
            )
        return title

    def clean_body(self) -> str:
        body: str = self.cleaned_data.get("body", "").strip()
        problem = body_errors(body)
        if problem:
            raise forms.ValidationError(problem)
        return body

    def clean_image_url(self) -> str:
        return _https(self.cleaned_data.get("image_url", ""))

    def clean_link_url(self) -> str:
        return _https(self.cleaned_data.get("link_url", ""))

    def clean_mini_program_path(self) -> str:
        path: str = self.cleaned_data.get("mini_program_path", "").strip()
        if path and (not _PAGE_PATH.fullmatch(path) or ".." in path):
            raise forms.ValidationError(
                _(
                    "Write the page inside the mini-program, such as pages/x/index?y=1: "
                    "no https://, no leading slash, no spaces."
                )
            )
        return path

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind not in KIND_FIELDS:
            return data
        needs: dict[str, Any] = {
            MaterialKind.TEXT: {"body": _("A text message needs its text.")},
            MaterialKind.IMAGE: {"image_url": _("An image needs its https:// address.")},
            MaterialKind.LINK: {"link_url": _("A link card needs the https:// page it opens.")},
            MaterialKind.MINI_PROGRAM: {
                "mini_program_path": _("A mini-program card needs the page it opens."),
                "image_url": _("A mini-program card needs a cover image."),
            },
        }[kind]
        for name, message in needs.items():
            # A field that already failed its own check keeps that error only.
            if name not in self.errors and not data.get(name):
                self.add_error(name, message)
        for name in _KIND_SPECIFIC:
            if name not in KIND_FIELDS[kind]:
                # Left over from another kind (hidden on the page): not part of this one.
                self.errors.pop(name, None)
                data[name] = ""
        return data


def _https(value: str) -> str:
    value = (value or "").strip()
    if value and urlsplit(value).scheme.lower() != "https":
        raise forms.ValidationError(
            _("Use an https:// address: WeChat and WeCom open secure addresses only.")
        )
    return value
